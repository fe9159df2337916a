"""Fresh work does not wait behind stale work: a burst's leftover nudges cost no transaction.

Counted, not timed: after a burst is applied, replaying every nudge the burst produced (what a
broker still holds) runs no transaction at all, a few reads at most, and the next fresh event
is applied by its own nudge in one transaction. The real-process version stops a worker while
a burst is submitted (so its nudges pile up in the broker), lets it go, and reads from its
heartbeat how the backlog was spent.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path

import pytest
import redis
import sqlalchemy as sa

from pystator.fleet.producer import EventSpec
from pystator.fsm_core.clock import as_utc, utc_now
from pystator.fsm_core.records import EntityKey
from pystator.stores.sql.connections import dispose, fleet_engine
from pystator.stores.sql.schema import worker_events, worker_heartbeats
from tests.support import worker_processes as procs
from tests.support.fleet_processes import RedisServer, producer_runtime
from tests.support.worker import MACHINE, Rig, make_rig

pytestmark = pytest.mark.integration

ENTITIES = 200
EVENTS_PER_ENTITY = 5


class RecordingNudger:
    """Keeps every nudge a producer sends (what the broker would hold)."""

    def __init__(self) -> None:
        self.sent: list[tuple[list[EntityKey], int | None]] = []

    def nudge(self, keys: Sequence[EntityKey], *, through: int | None = None) -> None:
        self.sent.append((list(keys), through))

    def flush(self, timeout: float = 0.0) -> bool:
        return True

    def repay(self) -> bool:
        return False


@pytest.fixture
def rig(pg_migrated_url: str) -> Iterator[Rig]:
    rig = make_rig(pg_migrated_url)
    yield rig
    dispose(rig.engine)


def test_a_bursts_leftover_nudges_cost_no_transaction(rig: Rig) -> None:
    nudger = RecordingNudger()
    rig.producer.nudger = nudger
    for n in range(EVENTS_PER_ENTITY):
        for e in range(ENTITIES):
            rig.producer.submit(
                EventSpec(machine=MACHINE, entity_id=f"b{e}", trigger="open" if n == 0 else "close")
            )
    assert rig.processor.drain() == ENTITIES * EVENTS_PER_ENTITY
    processor = rig.processor
    before = processor.nudges.as_dict()

    for keys, through in nudger.sent:  # the broker's backlog, consumed after the fact
        assert processor.process_entities(keys, through=through) == 0

    spent = {k: v - before[k] for k, v in processor.nudges.as_dict().items()}
    assert spent["received"] == len(nudger.sent) == ENTITIES * EVENTS_PER_ENTITY
    assert spent["transactions"] == 0  # not one transaction for stale work
    assert spent["stale"] == 1  # one read found the first stale; the watermark did the rest
    assert spent["dropped"] == spent["received"] - 1
    # one at a time, each nudge needs a reading taken after it arrived: one index lookup each
    assert spent["watermark_reads"] == spent["dropped"]

    probe = rig.submit("fresh", "open")
    keys, through = nudger.sent[-1]
    assert processor.process_entities(keys, through=through) == 1
    assert processor.nudges.as_dict()["transactions"] - before["transactions"] == 1
    assert rig.event(probe).status == "completed"


def test_nudges_that_arrive_together_share_one_watermark_reading(rig: Rig) -> None:
    rig.submit("a", "open")
    rig.processor.drain()
    settled = rig.processor.settled
    arrived = time.monotonic()
    reads = rig.processor.nudges.as_dict()["watermark_reads"]
    assert settled.covers(1, arrived_at=arrived)
    assert all(settled.covers(1, arrived_at=arrived) for _ in range(10))
    assert rig.processor.nudges.as_dict()["watermark_reads"] == reads + 1


def test_nudges_without_an_id_are_always_looked_at(rig: Rig) -> None:
    rig.submit("a", "open")
    rig.processor.drain()
    rig.processor.settled.saw_stale()
    assert rig.processor.settled.covers(1, arrived_at=time.monotonic())
    rig.submit("a", "close")  # e.g. a replayed or timer event, nudged with no id
    assert rig.processor.process_entities([(MACHINE, "a")], through=None) == 1


def test_a_reading_older_than_the_nudge_never_drops_it(rig: Rig) -> None:
    """A reading taken before a nudge's events were visible (an insert still in flight, or
    a table whose ids started over) is never used for it: the bench caught a worker dropping
    every fresh nudge after ``TRUNCATE ... RESTART IDENTITY``, on a watermark read before."""
    for n in range(5):
        rig.submit(f"old{n}", "open")
    assert rig.processor.drain() == 5
    settled = rig.processor.settled
    settled.saw_stale()
    assert settled.covers(5, arrived_at=time.monotonic())  # all five are settled
    with rig.engine.begin() as conn:
        conn.execute(sa.text("TRUNCATE worker_events RESTART IDENTITY"))
    fresh = rig.submit("fresh", "open")
    assert fresh <= 5  # ids started over: an old reading would say it is settled
    assert rig.processor.process_entities([(MACHINE, "fresh")], through=fresh) == 1
    assert rig.event(fresh).status == "completed"


def test_an_insert_committed_after_a_reading_is_not_taken_for_settled(rig: Rig) -> None:
    settled = rig.processor.settled
    settled.saw_stale()
    with rig.engine.connect() as conn, conn.begin():  # an insert in flight: id taken
        in_flight = int(
            rig.producer.enqueue(conn, EventSpec(machine=MACHINE, entity_id="slow", trigger="open"))
        )
        later = rig.submit("quick", "open")  # a higher id, committed first
        assert rig.processor.process_entities([(MACHINE, "quick")], through=later) == 1
        assert settled.covers(later, arrived_at=time.monotonic())  # read: "slow" invisible
    # "slow" committed now; its nudge arrives after that reading
    assert rig.processor.process_entities([(MACHINE, "slow")], through=in_flight) == 1
    assert rig.event(in_flight).status == "completed"


def test_a_worker_spends_a_nudge_backlog_without_transactions(
    pg_migrated_url: str, unique_name: str, tmp_path: Path
) -> None:
    queue = f"pystator-{unique_name}"
    with RedisServer(log_path=tmp_path / "redis.log") as broker:
        settings = {
            "PYSTATOR_DATABASE_URL": pg_migrated_url,
            "PYSTATOR_BROKER_URL": broker.url,
            "PYSTATOR_QUEUE": queue,
            "PYSTATOR_HEARTBEAT_SECONDS": "0.2",
        }
        args = ["worker", "--concurrency", "2", "--machines", str(procs.MACHINES)]
        worker = procs.start([*args, "--app", procs.APP], settings, tmp_path / "worker.log")
        engine = fleet_engine(pg_migrated_url)
        try:
            procs.wait_for(lambda: procs.run(["health"], settings).returncode == 0, "the worker")
            os.killpg(worker.pid, signal.SIGSTOP)  # the burst's nudges pile up in the broker
            # The nudge gate off: every flush of the burst leaves its nudge in the broker (with
            # the gate on, the messages kept would name only the burst's first entities, each
            # due when read; tests/fleet/test_cold_start.py counts the gate)
            with producer_runtime(
                pg_migrated_url, broker.url, procs.MACHINES, queue=queue, nudge_queue_max=0
            ) as rt:
                for n in range(EVENTS_PER_ENTITY):
                    for e in range(ENTITIES):
                        trigger = "open" if n == 0 else "bump"
                        rt.producer.submit(
                            EventSpec(machine=MACHINE, entity_id=f"w{e}", trigger=trigger)
                        )
                assert rt.nudger.flush(10)
                os.killpg(worker.pid, signal.SIGCONT)
                procs.wait_for(lambda: _pending(engine) == 0, "the burst to be applied")
                rt.producer.submit(EventSpec(machine=MACHINE, entity_id="probe", trigger="open"))
                assert rt.nudger.flush(10)
                procs.wait_for(lambda: _state(engine, "probe") == "open", "the probe")
            client = redis.Redis.from_url(broker.url)
            procs.wait_for(lambda: client.llen(queue) == 0, "the backlog to be consumed")
            client.close()
            consumed = utc_now()
            procs.wait_for(lambda: _last_beat(engine) > consumed, "a heartbeat after that")
            counts = _nudges(engine)
        finally:
            procs.kill(worker)
            dispose(engine)
    print(f"nudges consumed by the worker: {counts}")
    # most of the backlog announced work already done: it cost no transaction
    assert counts["transactions"] < counts["received"] / 2, counts
    assert counts["dropped"] + counts["stale"] > counts["received"] / 2, counts
    assert counts["watermark_reads"] <= counts["received"], counts  # at most one lookup each


def _last_beat(engine: sa.Engine) -> datetime:
    with engine.connect() as conn:
        beat = conn.execute(sa.select(sa.func.max(worker_heartbeats.c.beat_at))).scalar_one()
    return as_utc(beat)


def _pending(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        query = sa.select(sa.func.count()).where(worker_events.c.status == "pending")
        return int(conn.execute(query).scalar_one())


def _state(engine: sa.Engine, entity: str) -> str | None:
    with engine.connect() as conn:
        return conn.execute(
            sa.text("SELECT state FROM entity_states WHERE entity_id = :e"), {"e": entity}
        ).scalar_one_or_none()


def _nudges(engine: sa.Engine) -> dict[str, int]:
    with engine.connect() as conn:
        infos = conn.execute(sa.select(worker_heartbeats.c.info)).scalars().all()
    totals = {"received": 0, "dropped": 0, "stale": 0, "transactions": 0, "watermark_reads": 0}
    for info in infos:
        for key, value in (info or {}).get("nudges", {}).items():
            totals[key] += int(value)
    return totals
