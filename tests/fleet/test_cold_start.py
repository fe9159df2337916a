"""A cold start, counted (not timed): a backlog submitted while no worker runs leaves a bounded
number of nudges in the broker, a worker that starts drains it without them (then purges the
stale ones and drains again), and a fresh event's nudge has a bounded number of stale messages
ahead of it.

The bound (``pystator.fleet.nudge_gate``): ``PYSTATOR_NUDGE_QUEUE_MAX`` + 16 per publishing
process. Here one process publishes (this test's producer): 128 + 16 = 144 messages, for
10,000 events; without the gate this backlog left one message per few events.
"""

from __future__ import annotations

import threading
from datetime import datetime
from pathlib import Path

import pytest
import redis
import sqlalchemy as sa
from kombu.connection import Connection

from pystator.config.settings import DEFAULT_NUDGE_QUEUE_MAX, Settings
from pystator.fleet.broker_depth import AmqpQueueDepth, RedisQueueDepth
from pystator.fleet.celery_config import new_app
from pystator.fleet.nudge import BackgroundNudger, CeleryNudger
from pystator.fleet.nudge_gate import DEFAULT_ALLOWANCE, NudgeGate
from pystator.fleet.producer import EventSpec, Producer
from pystator.fsm_core.clock import as_utc, utc_now
from pystator.stores.sql.connections import dispose, fleet_engine
from pystator.stores.sql.schema import worker_events, worker_heartbeats
from tests.support import worker_processes as procs
from tests.support.fleet_processes import RedisServer, producer_runtime
from tests.support.worker import MACHINE

pytestmark = pytest.mark.integration

ENTITIES = 2_000
EVENTS_PER_ENTITY = 5
PRODUCER_THREADS = 2
#: One publishing process (this test's producer).
BOUND = DEFAULT_NUDGE_QUEUE_MAX + DEFAULT_ALLOWANCE


def test_a_cold_backlog_leaves_a_bounded_queue_and_a_fresh_event_waits_behind_few(
    pg_migrated_url: str, unique_name: str, tmp_path: Path
) -> None:
    queue = f"pystator-{unique_name}"
    engine = fleet_engine(pg_migrated_url)
    with (
        RedisServer(log_path=tmp_path / "redis.log") as broker,
        producer_runtime(pg_migrated_url, broker.url, procs.MACHINES, queue=queue) as runtime,
    ):
        client = redis.Redis.from_url(broker.url)
        submit_backlog(runtime.producer)
        assert runtime.nudger.flush(30)
        left = client.llen(queue)
        gate = gated(runtime.nudger)
        print(f"messages in the broker after {ENTITIES * EVENTS_PER_ENTITY:,} events: {left}")
        assert 0 < left <= BOUND
        assert gate.left_out > 0 and gate.in_debt

        settings = {
            "PYSTATOR_DATABASE_URL": pg_migrated_url,
            "PYSTATOR_BROKER_URL": broker.url,
            "PYSTATOR_QUEUE": queue,
            "PYSTATOR_HEARTBEAT_SECONDS": "0.2",
        }
        args = ["worker", "--concurrency", "2", "--no-relay", "--machines", str(procs.MACHINES)]
        worker = procs.start([*args, "--app", procs.APP], settings, tmp_path / "worker.log")
        try:
            procs.wait_for(lambda: pending(engine) == 0, "the backlog to be applied", 180)
            procs.wait_for(lambda: purged(tmp_path / "worker.log"), "the stale nudges purged")
            ahead = client.llen(queue)  # stale messages the fresh nudge queues behind
            fresh = runtime.producer.submit(
                EventSpec(machine=MACHINE, entity_id="fresh", trigger="open")
            )
            procs.wait_for(lambda: status(engine, fresh) == "completed", "the fresh event")
            procs.wait_for(lambda: client.llen(queue) == 0, "the stale nudges to be consumed")
            consumed = utc_now()
            procs.wait_for(lambda: last_beat(engine) > consumed, "a heartbeat after that")
            received = nudges(engine)["received"]
        finally:
            procs.kill(worker)
            client.close()
    dispose(engine)
    log = (tmp_path / "worker.log").read_text()
    print(f"ahead of the fresh nudge: {ahead}; received by the worker in all: {received}")
    assert "startup_backlog_drained" in log  # applied at start-up, not by its nudges
    assert "stale_nudges_purged" in log  # the queue was at its bound: purged, drained again
    assert ahead <= BOUND
    # every message the worker ever took: the stale ones, the owed drain and the fresh nudge
    assert received <= BOUND + 2


def test_the_redis_reader_counts_what_celery_queued(redis_url: str, unique_name: str) -> None:
    queue = f"q-{unique_name}"
    reader = RedisQueueDepth(redis_url, queue)
    nudger = celery_nudger(redis_url, queue)
    try:
        assert reader() == 0
        for n in range(5):
            nudger.nudge([(MACHINE, f"e{n}")], through=n)
        assert reader() == 5
    finally:
        reader.close()


def test_the_amqp_reader_counts_what_celery_queued(amqp_url: str, unique_name: str) -> None:
    queue = f"q-{unique_name}"
    reader = AmqpQueueDepth(amqp_url, queue)
    nudger = celery_nudger(amqp_url, queue)
    try:
        assert reader() == 0  # not declared yet: nothing in it
        for n in range(5):
            nudger.nudge([(MACHINE, f"e{n}")], through=n)
        procs.wait_for(lambda: reader() == 5, "five messages ready")
    finally:
        drop_queue(amqp_url, queue)
        reader.close()


# --- helpers ---------------------------------------------------------------------------------


def submit_backlog(producer: Producer) -> None:
    """5 events for each of 2,000 entities, one submit each, from two threads."""

    def produce(offset: int) -> None:
        for n in range(offset, ENTITIES * EVENTS_PER_ENTITY, PRODUCER_THREADS):
            entity, round_ = n % ENTITIES, n // ENTITIES
            trigger = "open" if round_ == 0 else "bump"
            spec = EventSpec(machine=MACHINE, entity_id=f"c{entity}", trigger=trigger)
            producer.submit(spec)

    threads = [threading.Thread(target=produce, args=(t,)) for t in range(PRODUCER_THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def gated(nudger: object) -> NudgeGate:
    assert isinstance(nudger, BackgroundNudger)
    inner = nudger.inner
    assert isinstance(inner, CeleryNudger) and inner.gate is not None
    return inner.gate


def celery_nudger(url: str, queue: str) -> CeleryNudger:
    return CeleryNudger(new_app(Settings(broker_url=url, queue=queue)), queue)


def drop_queue(url: str, queue: str) -> None:
    with Connection(url) as conn:
        conn.default_channel.queue_delete(queue)


def purged(log: Path) -> bool:
    return "stale_nudges_purged" in log.read_text(errors="replace")


def pending(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        query = sa.select(sa.func.count()).where(worker_events.c.status == "pending")
        return int(conn.execute(query).scalar_one())


def status(engine: sa.Engine, event_id: int) -> str:
    with engine.connect() as conn:
        query = sa.select(worker_events.c.status).where(worker_events.c.id == event_id)
        return str(conn.execute(query).scalar_one())


def last_beat(engine: sa.Engine) -> datetime:
    with engine.connect() as conn:
        beat = conn.execute(sa.select(sa.func.max(worker_heartbeats.c.beat_at))).scalar_one()
    return as_utc(beat) if beat is not None else datetime.min.replace(tzinfo=utc_now().tzinfo)


def nudges(engine: sa.Engine) -> dict[str, int]:
    with engine.connect() as conn:
        infos = conn.execute(sa.select(worker_heartbeats.c.info)).scalars().all()
    totals: dict[str, int] = {}
    for info in infos:
        for key, value in (info or {}).get("nudges", {}).items():
            totals[key] = totals.get(key, 0) + int(value)
    return totals
