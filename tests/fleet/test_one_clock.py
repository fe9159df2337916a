"""One clock: what is due, and whether a worker is alive, is decided by PostgreSQL's clock.

The producer runs on a host whose clock is 5 s ahead of the database's, or 5 s behind
(injected as its ``host_clock``, the only clock it still reads); the worker's components are
built as a worker process builds them (no clock: the database's). Every time below is read
from the database, before and after, so nothing depends on how fast the test runs; where an
event must become due, the test waits on the condition with a deadline.

Each test fails on the host-clock code this replaced: there the producer stamped
``created_at`` with its own clock, so a producer running ahead made a delayed event due at once
(``fires_at <= created_at``) and held its retries back by the skew, and heartbeats were stamped
by each worker's host.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa

from pystator.fleet.liveness import Heartbeat, LivenessLock, WorkerStatus, find_dead_workers
from pystator.fleet.nudge import NullNudger
from pystator.fleet.processor import Processor, ProcessorOptions
from pystator.fleet.producer import EventSpec, Producer
from pystator.fsm_core.backoff import Backoff
from pystator.fsm_core.clock import as_utc, utc_now
from pystator.stores.sql.connections import dispose, fleet_engine
from pystator.stores.sql.db_clock import read_now
from pystator.stores.sql.schema import transition_history, worker_events, worker_heartbeats
from tests.support.waiting import wait_until
from tests.support.worker import MACHINE, Hooks, make_machines

pytestmark = pytest.mark.integration

SKEW = timedelta(seconds=5)
#: A delayed event's distance from the database's now: inside the skew, so a clock off by the
#: skew gets it wrong, and far longer than a statement takes.
AHEAD = timedelta(seconds=2.5)
RETRY_SECONDS = 1.0
WAIT_SECONDS = 30.0


class Fleet:
    """A producer on a skewed host and a worker on the database's clock, on one database."""

    def __init__(self, url: str, skew: timedelta) -> None:
        self.engine = fleet_engine(url)
        self.hooks = Hooks()
        machines = make_machines(self.hooks)
        host: Callable[[], datetime] = lambda: utc_now() + skew  # noqa: E731
        self.producer = Producer(
            engine=self.engine, machines=machines, nudger=NullNudger(), host_clock=host
        )
        retry = Backoff(base_seconds=RETRY_SECONDS, max_seconds=60)
        self.processor = Processor(
            self.engine, machines, options=ProcessorOptions(retry=retry), rand=lambda: 1.0
        )

    def db_now(self) -> datetime:
        with self.engine.connect() as conn:
            return read_now(conn)

    def submit(
        self,
        entity: str,
        trigger: str,
        *,
        context: dict[str, object] | None = None,
        fires_at: datetime | None = None,
    ) -> int:
        spec = EventSpec(
            machine=MACHINE, entity_id=entity, trigger=trigger, context=context, fires_at=fires_at
        )
        return self.producer.submit(spec).event_id

    def event(self, event_id: int) -> sa.Row[tuple[object, ...]]:
        with self.engine.connect() as conn:
            return conn.execute(
                sa.select(worker_events).where(worker_events.c.id == event_id)
            ).one()

    def applied_at(self, event_id: int) -> datetime:
        with self.engine.connect() as conn:
            query = sa.select(transition_history.c.created_at).where(
                transition_history.c.event_id == event_id
            )
            return as_utc(conn.execute(query).scalar_one())

    def apply_when_due(self, entity: str, done: Callable[[], bool]) -> None:
        """Nudge the entity until ``done`` (each look is one nudge, as a worker gets them)."""

        def nudged_and_done() -> bool:
            self.processor.process_entities([(MACHINE, entity)])
            return done()

        wait_until(nudged_and_done, timeout=WAIT_SECONDS, interval=0.01, message="applied")


@pytest.fixture(params=[SKEW, -SKEW], ids=["producer 5 s ahead", "producer 5 s behind"])
def fleet(request: pytest.FixtureRequest, pg_migrated_url: str) -> Iterator[Fleet]:
    fleet = Fleet(pg_migrated_url, request.param)
    yield fleet
    dispose(fleet.engine)


def test_an_immediate_event_is_stamped_by_the_database_and_applied_by_its_nudge(
    fleet: Fleet,
) -> None:
    before = fleet.db_now()
    event_id = fleet.submit("a", "open")
    after = fleet.db_now()
    row = fleet.event(event_id)
    assert before <= as_utc(row.created_at) <= after
    assert row.fires_at == row.created_at
    assert fleet.processor.process_entities([(MACHINE, "a")]) == 1  # its nudge finds it due


def test_a_delayed_event_fires_when_the_databases_clock_reaches_it(fleet: Fleet) -> None:
    fleet.submit("b", "open")
    fleet.processor.process_entities([(MACHINE, "b")])
    fires_at = fleet.db_now() + AHEAD
    event_id = fleet.submit("b", "close", fires_at=fires_at)
    assert fleet.processor.process_entities([(MACHINE, "b")]) == 0  # not due yet, by the database
    fleet.apply_when_due("b", lambda: fleet.event(event_id).status == "completed")
    applied = fleet.applied_at(event_id)
    assert fires_at <= applied < fires_at + SKEW  # not early, and not late by a host's skew


def test_a_retry_fires_after_its_backoff_by_the_databases_clock(fleet: Fleet) -> None:
    fleet.submit("c", "open")
    fleet.processor.process_entities([(MACHINE, "c")])
    event_id = fleet.submit("c", "bump", context={"flaky": True})
    fleet.hooks.flaky_failures = 1
    assert fleet.processor.process_entities([(MACHINE, "c")]) == 1  # the failed attempt
    row = fleet.event(event_id)
    failed_at = as_utc(row.updated_at)
    retry_at = as_utc(row.fires_at)
    assert row.status == "pending" and row.attempts == 1
    assert retry_at - failed_at == timedelta(seconds=RETRY_SECONDS)  # the backoff, no more
    fleet.apply_when_due("c", lambda: fleet.event(event_id).status == "completed")
    applied = fleet.applied_at(event_id)
    assert retry_at <= applied < retry_at + SKEW


def test_heartbeats_are_stamped_and_judged_by_the_databases_clock(
    fleet: Fleet, pg_migrated_url: str
) -> None:
    far_behind = WorkerStatus(kind="threads", clock=lambda: utc_now() - timedelta(hours=1))
    lock = LivenessLock(pg_migrated_url, far_behind.worker_id)  # a live process
    try:
        heartbeat = Heartbeat(fleet.engine, far_behind, interval=1, stall_seconds=60)
        before = fleet.db_now()
        heartbeat.beat_once()
        with fleet.engine.connect() as conn:
            beat_at = as_utc(conn.execute(sa.select(worker_heartbeats.c.beat_at)).scalar_one())
        assert before <= beat_at <= fleet.db_now()
        # its host's clock is an hour behind, yet its heartbeat is fresh: it is alive
        assert find_dead_workers(fleet.engine, stale_after=timedelta(minutes=30)) == []
    finally:
        lock.release()
