"""Per-minute event counts (``event_rollups``) and the last duplicate time of a key: written by
the workers' heartbeats, read by the charts, on PostgreSQL and SQLite."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from pystator.fleet.liveness import Heartbeat, WorkerStatus
from pystator.fleet.producer import EventSpec
from pystator.fleet.rollups import MAX_HELD_KEYS, EventRollups
from pystator.fleet.runtime import Runtime
from pystator.stores.sql import rollup_queries
from pystator.stores.sql.connections import dispose, transaction
from pystator.stores.sql.schema import event_rollups, worker_events
from tests.support.worker import MACHINE, Hooks, make_runtime

pytestmark = pytest.mark.integration

MINUTE = datetime(2026, 11, 27, 12, 30, tzinfo=UTC)


@pytest.fixture(params=["postgresql", "sqlite"])
def db_url(request: pytest.FixtureRequest) -> str:
    name = "pg_migrated_url" if request.param == "postgresql" else "sqlite_migrated_url"
    return str(request.getfixturevalue(name))


@pytest.fixture
def runtime(db_url: str) -> Iterator[Runtime]:
    runtime = make_runtime(db_url, Hooks())
    yield runtime
    runtime.close()


def stored(engine: sa.Engine) -> dict[tuple[str, str], int]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(event_rollups)).all()
    return {(r.machine, r.outcome): int(r.count) for r in rows}


def test_counts_add_up_across_writers(runtime: Runtime) -> None:
    engine = runtime.engine
    for _ in range(3):
        with transaction(engine) as conn:
            rollup_queries.add(conn, {(MINUTE, "m", "applied"): 2, (MINUTE, "m", "dead"): 1})
    with transaction(engine) as conn:
        rollup_queries.add(conn, {(MINUTE + timedelta(minutes=1), "m", "applied"): 5})
        rollup_queries.add(conn, {})
    with engine.connect() as conn:
        assert rollup_queries.totals(conn, MINUTE) == {("m", "applied"): 11, ("m", "dead"): 3}
        assert rollup_queries.totals(conn, MINUTE + timedelta(minutes=1)) == {("m", "applied"): 5}
        assert rollup_queries.per_minute(conn, MINUTE, machine="m") == [
            (MINUTE, "applied", 6),
            (MINUTE, "dead", 3),
            (MINUTE + timedelta(minutes=1), "applied", 5),
        ]
        assert rollup_queries.per_minute(conn, MINUTE, machine="other") == []


def test_a_drain_is_counted_and_written_when_the_runtime_closes(db_url: str) -> None:
    hooks = Hooks()
    # a long backoff: on a slow run the default 0.5 s passed before the drain ended, and the
    # poison event was retried twice
    runtime = make_runtime(db_url, hooks, retry_base_seconds=60.0)
    try:
        specs = [EventSpec(machine=MACHINE, entity_id=f"e{n}", trigger="open") for n in range(4)]
        runtime.producer.submit_many(specs)
        runtime.producer.submit(EventSpec(machine=MACHINE, entity_id="e0", trigger="open"))
        runtime.producer.submit(
            EventSpec(machine=MACHINE, entity_id="e1", trigger="bump", context={"poison": True})
        )
        runtime.processor.drain()
        assert stored(runtime.engine) == {}  # counted in memory until a heartbeat or the close
    finally:
        runtime.close()
    engine = sa.create_engine(db_url)
    try:
        assert stored(engine) == {
            (MACHINE, "applied"): 4,
            (MACHINE, "rejected"): 1,
            (MACHINE, "retried"): 1,  # its next attempt is due after a backoff
        }
    finally:
        engine.dispose()


def test_the_heartbeat_writes_the_counts_and_keeps_them_when_it_fails(runtime: Runtime) -> None:
    rollups = EventRollups(clock=lambda: MINUTE + timedelta(seconds=42))
    rollups.restore({(MINUTE, MACHINE, "applied"): 7})
    status = WorkerStatus(kind="embedded")
    beat = Heartbeat(runtime.engine, status, interval=1, stall_seconds=60, rollups=rollups)
    beat.beat_once()
    assert stored(runtime.engine) == {(MACHINE, "applied"): 7}
    assert rollups.take() == {}

    rollups.restore({(MINUTE, MACHINE, "applied"): 3})
    broken = Heartbeat(
        sa.create_engine("postgresql+psycopg://nobody@127.0.0.1:1/none"),
        status,
        interval=1,
        stall_seconds=60,
        rollups=rollups,
    )
    with pytest.raises(Exception):  # noqa: B017 - whatever the driver raises, counts are kept
        broken.beat_once()
    assert rollups.take() == {(MINUTE, MACHINE, "applied"): 3}


def test_held_counts_are_bounded_oldest_minutes_first() -> None:
    rollups = EventRollups()
    rollups.restore(
        {(MINUTE + timedelta(minutes=n), "m", "applied"): 1 for n in range(MAX_HELD_KEYS + 10)}
    )
    held = rollups.take()
    assert len(held) == MAX_HELD_KEYS
    assert min(key[0] for key in held) == MINUTE + timedelta(minutes=10)


def test_a_repeated_key_records_when_it_was_last_repeated(runtime: Runtime) -> None:
    spec = EventSpec(machine=MACHINE, entity_id="a", trigger="open", idempotency_key="k-1")
    other = EventSpec(machine=MACHINE, entity_id="b", trigger="open", idempotency_key="k-2")
    runtime.producer.submit(spec)
    runtime.producer.submit(other)

    def last_duplicates() -> dict[str, datetime | None]:
        with runtime.engine.connect() as conn:
            rows = conn.execute(
                sa.select(worker_events.c.idempotency_key, worker_events.c.last_duplicate_at)
            ).all()
        return {str(k): v for k, v in rows}

    assert last_duplicates() == {"k-1": None, "k-2": None}
    runtime.producer.submit(spec)
    runtime.producer.submit_many([spec])
    first = last_duplicates()
    assert first["k-1"] is not None and first["k-2"] is None
    conflict = EventSpec(machine=MACHINE, entity_id="z", trigger="open", idempotency_key="k-2")
    with pytest.raises(Exception):  # noqa: B017 - a conflict, not a repeat: nothing recorded
        runtime.producer.submit(conflict)
    assert last_duplicates()["k-2"] is None
    dispose(runtime.engine)
