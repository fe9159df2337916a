"""What the fleet benchmarks share: the benchmark machine, a throwaway database on the local
PostgreSQL, and the 1,000 x 5 drain (``bench/fleet.py`` and ``bench/fleet_latency.py``)."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.scratch_db import scratch_database  # noqa: E402
from tests.support.fleet_database import pending_count  # noqa: E402
from tests.support.waiting import wait_until  # noqa: E402

PG_SERVER_URL = os.environ.get(
    "PYSTATOR_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
MACHINES = ROOT / "bench" / "machines"
MACHINE = "bench_cycle"
DRAIN_ENTITIES = 1000
DRAIN_EVENTS_PER_ENTITY = 5
DRAIN_TIMEOUT_SECONDS = 600.0
TABLES = ("worker_events", "entity_states", "transition_history", "action_outbox")


@contextmanager
def bench_database() -> Iterator[str]:
    """A fresh database on the local PostgreSQL, dropped on exit."""
    with scratch_database(PG_SERVER_URL) as url:
        yield url


def truncate(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY"))


def wait_drained(engine: sa.Engine) -> None:
    wait_until(
        lambda: pending_count(engine) == 0,
        timeout=DRAIN_TIMEOUT_SECONDS,
        interval=0.05,
        message="all events applied",
    )


def measure_drain(
    engine: sa.Engine,
    url: str,
    *,
    prefix: str = "drain",
    entities: int = DRAIN_ENTITIES,
    events_per_entity: int = DRAIN_EVENTS_PER_ENTITY,
) -> float:
    """``entities`` x ``events_per_entity`` events (1,000 x 5 by default) submitted at once, for
    entity ids starting with ``prefix``; events/s from submit to the last applied."""
    from pystator.worker import submit_events

    events = [
        {"machine_name": MACHINE, "entity_id": f"{prefix}-{e}", "trigger": "next"}
        for _ in range(events_per_entity)
        for e in range(entities)
    ]
    start = time.perf_counter()
    submit_events(events, db_url=url)
    wait_drained(engine)
    return len(events) / (time.perf_counter() - start)
