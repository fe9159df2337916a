"""The cost of persistence: orchestrated transitions per second for every state store.

Run: ``.venv/bin/python bench/store.py`` (``--quick`` for a short smoke run). Prints a markdown
table: for memory, SQLite, PostgreSQL and Redis, ``Orchestrator.process_event`` rate on one entity
and spread over 1,000 entities, next to the bare engine's ``machine.process`` rate measured in
the same run (and the ratio between the two).

One orchestrated transition = load the record, compute, write it with a version check plus its
history row (one transaction / one Lua call), run (no) actions. Single thread, no contention.
PostgreSQL gets a throw-away database; Redis a unique key prefix that is deleted afterwards.
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import report  # bench/report.py: every run is saved as JSON

# this directory is on sys.path when run as a script
from scratch_db import scratch_database  # type: ignore[import-not-found]

from pystator import StateMachine
from pystator.orchestrator import Orchestrator

DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
MANY_ENTITIES = 1_000
CYCLE: dict[str, Any] = {
    "meta": {"version": "1.0.0", "machine_name": "bench_cycle"},
    "states": [{"name": "A", "type": "initial"}, {"name": "B", "type": "stable"}],
    "transitions": [
        {"trigger": "tick", "source": "A", "dest": "B"},
        {"trigger": "tick", "source": "B", "dest": "A"},
    ],
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Row:
    """One line of the table."""

    store: str
    entities: int
    events: int
    per_second: float


def engine_rate(machine: StateMachine, events: int) -> float:
    """Bare ``machine.process`` calls per second (the engine alone)."""
    state = "A"
    started = time.perf_counter()
    for _ in range(events):
        state = machine.process(state, "tick", {}).target_state or state
    return events / (time.perf_counter() - started)


def orchestrated_rate(orchestrator: Orchestrator, entities: int, events: int) -> float:
    """``process_event`` calls per second, round-robin over ``entities`` ids."""
    ids = [f"e{n}" for n in range(entities)]
    for entity in ids:  # create every entity first: measure steady-state updates
        orchestrator.process_event(entity, "tick", {"n": 0})
    started = time.perf_counter()
    for n in range(events):
        orchestrator.process_event(ids[n % entities], "tick", {"n": n})
    return events / (time.perf_counter() - started)


@contextmanager
def memory_store(_args: argparse.Namespace) -> Iterator[Any]:
    from pystator.stores import InMemoryStateStore

    yield InMemoryStateStore()


@contextmanager
def sqlite_store(_args: argparse.Namespace) -> Iterator[Any]:
    from pystator.stores import SqlStateStore
    from pystator.stores.sql import migrator

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        migrator.upgrade(url)
        store = SqlStateStore(url)
        try:
            yield store
        finally:
            store.close()


@contextmanager
def postgres_store(args: argparse.Namespace) -> Iterator[Any]:
    from pystator.stores import SqlStateStore
    from pystator.stores.sql import migrator

    with scratch_database(args.postgres_url) as url:
        migrator.upgrade(url)
        store = SqlStateStore(url)
        try:
            yield store
        finally:
            store.close()


@contextmanager
def redis_store(args: argparse.Namespace) -> Iterator[Any]:
    from pystator.stores import RedisStateStore

    prefix = f"pystator-bench-{uuid.uuid4().hex[:10]}"
    store = RedisStateStore(args.redis_url, key_prefix=prefix)
    try:
        yield store
    finally:
        keys = list(store.client.scan_iter(match=f"{prefix}:*", count=1000))
        for start in range(0, len(keys), 500):
            store.client.delete(*keys[start : start + 500])
        store.close()


STORES: dict[str, Callable[[argparse.Namespace], Any]] = {
    "memory": memory_store,
    "SQLite (file, WAL)": sqlite_store,
    "PostgreSQL (psycopg 3)": postgres_store,
    "Redis (Lua CAS)": redis_store,
}


def measure(args: argparse.Namespace) -> tuple[float, list[Row], list[str]]:
    """The engine rate, one row per (store, entity count), and the stores that were skipped."""
    machine = StateMachine.from_dict(CYCLE)
    engine_rate(machine, args.engine_events // 10)  # warm-up
    engine = engine_rate(machine, args.engine_events)
    rows: list[Row] = []
    skipped: list[str] = []
    for label, factory in STORES.items():
        events = args.memory_events if label == "memory" else args.events
        try:
            for entities in (1, MANY_ENTITIES):
                with factory(args) as store:
                    orchestrator = Orchestrator(
                        machine=StateMachine.from_dict(CYCLE), state_store=store
                    )
                    rate = orchestrated_rate(orchestrator, entities, events)
                    rows.append(Row(store=label, entities=entities, events=events, per_second=rate))
        except Exception as exc:  # a missing service: report and go on with the others
            skipped.append(f"{label}: {type(exc).__name__}: {exc}".splitlines()[0])
    return engine, rows, skipped


def render(engine: float, rows: list[Row], skipped: list[str]) -> str:
    """The markdown table (and notes) printed by the benchmark."""
    lines = [
        f"Python {platform.python_version()} on {platform.machine()}, single thread; bare engine "
        f"`machine.process`: **{engine:,.0f}/s**.",
        "",
        "| store | entities | events | orchestrated transitions/s | engine ÷ store |",
        "|---|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row.store} | {row.entities:,} | {row.events:,} | {row.per_second:,.0f} "
            f"| {engine / row.per_second:,.0f}x |"
        )
    lines.extend(f"\nskipped: {note}" for note in skipped)
    return "\n".join(lines)


def main() -> None:
    """Parse options, measure, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL)
    parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL)
    parser.add_argument("--events", type=int, default=3_000, help="events per SQL/Redis case")
    parser.add_argument("--memory-events", type=int, default=30_000)
    parser.add_argument("--engine-events", type=int, default=100_000)
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    args = parser.parse_args()
    if args.quick:
        args.events, args.memory_events, args.engine_events = 200, 2_000, 10_000
    print(render(*measure(args)))


if __name__ == "__main__":
    with report.recorded("store") as run:
        run.exit_code = main()
    sys.exit(run.exit_code)
