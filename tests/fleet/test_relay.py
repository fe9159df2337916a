"""The relay: stranded due events get nudged again; stranded actions get run."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from pystator.fleet.producer import EventSpec
from pystator.fleet.relay import EVERYTHING, Relay
from pystator.fleet.runtime import Runtime
from pystator.fsm_core.records import EntityKey
from pystator.stores.sql.schema import action_outbox, worker_events
from tests.support import worker_processes as procs
from tests.support.worker import MACHINE, FakeClock, Hooks, make_runtime

pytestmark = pytest.mark.integration


class RecordingNudger:
    def __init__(self) -> None:
        self.sent: list[EntityKey] = []

    def nudge(self, keys: Sequence[EntityKey]) -> None:
        self.sent.extend(keys)


@pytest.fixture
def runtime(pg_migrated_url: str) -> Iterator[Runtime]:
    runtime = make_runtime(pg_migrated_url, Hooks(), relay_interval_seconds=1.0)
    clock = FakeClock()
    runtime.processor.clock = clock
    runtime.producer.clock = clock
    runtime.outbox.clock = clock
    runtime.nudger = RecordingNudger()
    yield runtime
    runtime.close()


def _submit(runtime: Runtime, entity_id: str, **kw: object) -> int:
    spec = EventSpec(machine=MACHINE, entity_id=entity_id, trigger="open", **kw)  # type: ignore[arg-type]
    return runtime.producer.submit(spec).event_id


def test_relay_nudges_due_events_nobody_took_after_a_grace_period(runtime: Runtime) -> None:
    clock = runtime.processor.clock
    assert isinstance(clock, FakeClock)
    _submit(runtime, "now")  # had its own nudge (which we pretend was lost)
    _submit(runtime, "later", fires_at=clock() + timedelta(seconds=30))
    relay = Relay(runtime)
    nudger = runtime.nudger
    assert isinstance(nudger, RecordingNudger)

    assert relay.tick().nudged == 0  # within the grace period, the nudge may still arrive
    clock.advance(runtime.relay_grace().total_seconds() + 1)
    assert relay.tick().nudged == 1
    assert nudger.sent == [(MACHINE, "now")]

    clock.advance(30)  # the delayed event is due: nobody was ever nudged for it
    nudger.sent.clear()
    relay.tick()
    assert (MACHINE, "later") in nudger.sent

    for machine, entity in nudger.sent:
        runtime.processor.process_entity(machine, entity)
    nudger.sent.clear()
    runtime.processor.drain()
    assert relay.tick().nudged == 0  # nothing left


def test_relay_leaves_a_start_up_drain_s_backlog_to_it(runtime: Runtime) -> None:
    clock = runtime.processor.clock
    assert isinstance(clock, FakeClock)
    backlog = [_submit(runtime, f"old{n}") for n in range(3)]
    leave: list[int | None] = [EVERYTHING]
    relay = Relay(runtime, leave=lambda: leave[0])
    nudger = runtime.nudger
    assert isinstance(nudger, RecordingNudger)
    clock.advance(runtime.relay_grace().total_seconds() + 1)

    assert relay.tick().nudged == 0  # the drain does not know its backlog yet: all is its
    leave[0] = max(backlog)
    _submit(runtime, "fresh")
    clock.advance(runtime.relay_grace().total_seconds() + 1)
    assert relay.tick().nudged == 1
    assert nudger.sent == [(MACHINE, "fresh")]  # newer work only
    leave[0] = None  # the drain ended
    nudger.sent.clear()
    assert relay.tick().nudged == 4


def test_relay_runs_actions_whose_worker_died_after_commit(runtime: Runtime) -> None:
    runtime.run_actions_inline = False  # the worker dies right after its commit
    _submit(runtime, "a")
    runtime.processor.drain()
    relay = Relay(runtime)
    assert relay.tick().actions_run == 0  # still leased
    runtime.outbox.clock.advance(runtime.outbox.lease.total_seconds() + 1)  # type: ignore[attr-defined]
    assert relay.tick().actions_run == 1
    with runtime.engine.connect() as conn:
        status = conn.execute(sa.select(action_outbox.c.status)).scalar_one()
    assert status == "done"


def test_a_lost_nudge_does_not_strand_an_event_with_a_real_worker(
    pg_migrated_url: str, redis_url: str, unique_name: str, tmp_path: Path
) -> None:
    settings = {
        "PYSTATOR_DATABASE_URL": pg_migrated_url,
        "PYSTATOR_BROKER_URL": redis_url,
        "PYSTATOR_RELAY_INTERVAL_SECONDS": "0.2",
    }
    args = ["worker", "--concurrency", "2", "--queue", f"pystator-{unique_name}"]
    args += ["--machines", str(procs.MACHINES), "--app", procs.APP]
    worker = procs.start(args, settings, tmp_path / "worker.log")
    producer = make_runtime(pg_migrated_url, Hooks())  # NullNudger: every nudge is "lost"
    try:
        event_id = _submit(producer, "lost")

        def applied() -> bool:
            with producer.engine.connect() as conn:
                query = sa.select(worker_events.c.status).where(worker_events.c.id == event_id)
                return conn.execute(query).scalar_one() == "completed"

        procs.wait_for(applied, "the relay to re-nudge the event")
        assert procs.stop(worker) == 0
    finally:
        procs.kill(worker)
        producer.close()
