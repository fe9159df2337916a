"""Retention benchmark: the pruner's delete rate, and what pruning costs a draining fleet.

    .venv/bin/python bench/retention.py [--rows 5000000] [--workers 3] [--rounds 5]

On the local PostgreSQL (a database it creates and drops) and a private ``redis-server``:

1. ``worker_events`` is filled with ``--rows`` completed events spread over ten days, all past
   the 7-day window (``generate_series``, then ``VACUUM ANALYZE``);
2. the pruner alone (default pacing, then unthrottled, then 10,000-row batches), 5 s each: rows
   deleted per second; then ``VACUUM ANALYZE`` (what autovacuum would do after them);
3. ``--workers`` workers drain 2,000 entities x 5 events, alternately without and with a pruner
   pass running beside them (default settings: ``PYSTATOR_PRUNE_BATCH_ROWS`` rows per batch,
   ``PYSTATOR_PRUNE_PAUSE_SECONDS`` between batches), ``--rounds`` times each; the median drain
   rates and their ratio are printed (target: with pruning within 10 % of without);
4. one day of ``transition_history`` (``--history-day-rows`` rows, 100 days old) is pruned twice,
   each in a fresh database: row by row from the plain table (default pacing, then unthrottled),
   and by dropping its daily partition after ``pystator db partition-history`` (the pass's total
   time: counting the day, dropping it, creating the days ahead). ``--only-history-day`` runs
   just this part.

Numbers are printed, never asserted.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import report  # bench/report.py: every run is saved as JSON
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.fleet import (  # noqa: E402
    MACHINES,
    bench_database,
    warm_up,
)
from bench.fleet import measure_drain as fleet_drain  # noqa: E402
from pystator.config.settings import load_settings  # noqa: E402
from pystator.fleet.retention import PruneReport, RetentionPolicy, prune  # noqa: E402
from pystator.stores.sql import partition_queries  # noqa: E402
from pystator.stores.sql.connections import dispose, fleet_engine  # noqa: E402
from tests.support.fleet_database import create_schema  # noqa: E402
from tests.support.fleet_processes import RedisServer, WorkerFleet, producer_runtime  # noqa: E402

DRAIN_ENTITIES = 2000
DRAIN_EVENTS_PER_ENTITY = 5
PRUNE_ALONE_SECONDS = 5.0
SEED_DAYS = 10
TARGET_DRAIN_RATIO = 0.90

SEED_SQL = """
INSERT INTO worker_events (machine, entity_id, trigger, context, status, errors, fires_at,
                           created_at, updated_at, completed_at, outcome, attempts)
SELECT 'old_cycle', 'old-' || mod(g, 100000), 'next', '{{"n": 1}}'::jsonb, 'completed',
       '[]'::jsonb, t, t, t, t, '{{"target": "B"}}'::jsonb, 1
FROM generate_series({start}, {stop}) AS g,
     LATERAL (SELECT now() - interval '30 days'
                     - (g::float8 / {rows}) * interval '{days} days' AS t) AS x
"""
SEED_CHUNK = 1_000_000
HISTORY_DAY_AGE_DAYS = 100  # the seeded history day is this old (past the 90-day window)
HISTORY_SEED_SQL = """
INSERT INTO transition_history (machine, entity_id, version, source_state, target_state,
                                trigger, origin, actions, payload, created_at)
SELECT 'old_cycle', 'hist-' || g, 1, 'A', 'B', 'next', 'event', '[]'::jsonb,
       '{{"n": 1}}'::jsonb, timestamptz '{day}' + (g::float8 / ({rows} + 1)) * interval '1 day'
FROM generate_series(1, {rows}) AS g
"""


@dataclass
class HistoryDay:
    """Pruning one day of ``transition_history``: seconds per way."""

    rows: int
    delete_seconds: dict[str, float] = field(default_factory=dict)  # pacing label -> seconds
    drop_seconds: float = 0.0  # the prune pass that dropped the day's partition
    dropped: list[str] = field(default_factory=list)
    dropped_rows: int = 0


@dataclass
class Results:
    rows: int
    seed_seconds: float = 0.0
    vacuum_seconds: float = 0.0  # VACUUM after the pruner-alone runs
    day_seconds: float = 0.0  # one seeded day's rows at the default pacing
    alone: dict[str, float] = field(default_factory=dict)  # label -> rows/s
    drain_plain: list[float] = field(default_factory=list)
    drain_pruned: list[float] = field(default_factory=list)
    pruned_beside: list[float] = field(default_factory=list)  # rows/s during the drains
    notes: list[str] = field(default_factory=list)
    history_day: HistoryDay | None = None


def seed(url: str, rows: int) -> float:
    """``rows`` old completed events (in chunks: one transaction per million)."""
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    start = time.perf_counter()
    try:
        with engine.connect() as conn:
            for low in range(1, rows + 1, SEED_CHUNK):
                high = min(low + SEED_CHUNK - 1, rows)
                sql = SEED_SQL.format(start=low, stop=high, rows=rows, days=SEED_DAYS)
                conn.exec_driver_sql(sql)
                print(f"  seeded {high:,} rows", file=sys.stderr)
            conn.exec_driver_sql("VACUUM ANALYZE worker_events")
    finally:
        engine.dispose()
    return time.perf_counter() - start


def vacuum(url: str) -> float:
    """``VACUUM ANALYZE worker_events`` (what autovacuum does after a big prune)."""
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    start = time.perf_counter()
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("VACUUM ANALYZE worker_events")
    finally:
        engine.dispose()
    return time.perf_counter() - start


def prune_for(engine: sa.Engine, policy: RetentionPolicy, seconds: float) -> PruneReport:
    return prune(engine, policy, max_seconds=seconds)


def rate(report: PruneReport) -> float:
    return report.total / report.seconds if report.seconds else 0.0


def measure_drain(engine: sa.Engine, url: str, round_no: int, label: str) -> float:
    """One drain round of ``DRAIN_ENTITIES`` x ``DRAIN_EVENTS_PER_ENTITY`` fresh events."""
    return fleet_drain(
        engine,
        url,
        prefix=f"{label}-{round_no}",
        entities=DRAIN_ENTITIES,
        events_per_entity=DRAIN_EVENTS_PER_ENTITY,
    )


class BackgroundPruner:
    """Prune passes in a thread until stopped; counts the rows removed and the time spent."""

    def __init__(self, engine: sa.Engine, policy: RetentionPolicy) -> None:
        self.engine = engine
        self.policy = policy
        self.stop = threading.Event()
        self.removed = 0
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.started = 0.0
        self.seconds = 0.0

    def __enter__(self) -> BackgroundPruner:
        self.started = time.perf_counter()
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop.set()
        self.thread.join()
        self.seconds = time.perf_counter() - self.started

    def _run(self) -> None:
        while not self.stop.is_set():
            report = prune(self.engine, self.policy, stop=self.stop)
            self.removed += report.total
            if report.finished:  # nothing left to prune
                return


def run(args: argparse.Namespace) -> Results:
    results = Results(rows=args.rows)
    policy = RetentionPolicy.from_settings(load_settings({}))
    with tempfile.TemporaryDirectory() as tmp, bench_database() as url:
        create_schema(url)
        print(f"seeding {args.rows:,} completed events…", file=sys.stderr)
        results.seed_seconds = seed(url, args.rows)
        engine = fleet_engine(url, pool_size=4)
        plain = sa.create_engine(url)
        try:
            default = (
                f"default: batch {policy.batch_rows}, pause ≥ {policy.pause_seconds}s "
                f"and ≥ {policy.pause_factor:g}x the batch"
            )
            results.alone[default] = rate(prune_for(engine, policy, PRUNE_ALONE_SECONDS))
            no_pause = replace(policy, pause_seconds=0.0, pause_factor=0.0)
            results.alone[f"batch {policy.batch_rows}, no pause"] = rate(
                prune_for(engine, no_pause, PRUNE_ALONE_SECONDS)
            )
            big = replace(no_pause, batch_rows=10_000)
            results.alone["batch 10000, no pause"] = rate(
                prune_for(engine, big, PRUNE_ALONE_SECONDS)
            )
            results.day_seconds = args.rows / SEED_DAYS / results.alone[default]
            results.vacuum_seconds = vacuum(url)
            broker = RedisServer(log_path=Path(tmp) / "redis.log")
            with (
                broker,
                producer_runtime(url, broker.url, MACHINES),
                WorkerFleet(
                    database_url=url,
                    broker_url=broker.url,
                    log_dir=Path(tmp),
                    concurrency=args.concurrency,
                    machines=MACHINES,
                    app=None,
                    extra_env={"PYSTATOR_PRUNE_INTERVAL_SECONDS": "0"},  # the bench prunes
                ) as fleet,
            ):
                fleet.start_all(args.workers)
                warm_up(plain, url, args.workers)
                for n in range(args.rounds):
                    results.drain_plain.append(measure_drain(plain, url, n, "plain"))
                    with BackgroundPruner(engine, policy) as pruner:
                        results.drain_pruned.append(measure_drain(plain, url, n, "pruned"))
                    results.pruned_beside.append(pruner.removed / pruner.seconds)
                    if pruner.removed == 0:
                        results.notes.append(f"round {n}: the pruner had nothing left to do")
                fleet.stop_all()
        finally:
            dispose(engine)
            plain.dispose()
    results.history_day = measure_history_day(args.history_day_rows)
    return results


def seed_history_day(url: str, day: datetime, rows: int) -> None:
    """``rows`` history rows spread over ``day`` (a UTC midnight), then ``VACUUM ANALYZE``."""
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql(HISTORY_SEED_SQL.format(day=day, rows=rows))
            conn.exec_driver_sql("VACUUM ANALYZE transition_history")
    finally:
        engine.dispose()


def history_only(policy: RetentionPolicy) -> RetentionPolicy:
    """``policy`` with every window but the history one at 0 (kept forever)."""
    return replace(policy, windows={name: 0.0 for name in policy.windows} | {"history": 90.0})


def measure_history_day(rows: int) -> HistoryDay:
    """Prune one 100-day-old day of history row by row, then by dropping its partition."""
    result = HistoryDay(rows=rows)
    policy = history_only(RetentionPolicy.from_settings(load_settings({})))
    now = datetime.now(UTC)
    day = partition_queries.day_start(now) - timedelta(days=HISTORY_DAY_AGE_DAYS)
    pacings = {
        f"row delete, default pacing (batch {policy.batch_rows})": policy,
        f"row delete, batch {policy.batch_rows}, no pause": replace(
            policy, pause_seconds=0.0, pause_factor=0.0
        ),
    }
    for label, pacing in pacings.items():
        with bench_database() as url:
            create_schema(url)
            print(f"seeding {rows:,} history rows ({label})…", file=sys.stderr)
            seed_history_day(url, day, rows)
            engine = fleet_engine(url, pool_size=4)
            try:
                report = prune(engine, pacing, now=now)
                assert report.removed["transition_history"] == rows, report.removed
                result.delete_seconds[label] = report.seconds
            finally:
                dispose(engine)
    with bench_database() as url:
        create_schema(url)
        engine = fleet_engine(url, pool_size=4)
        try:
            with engine.begin() as conn:  # the day's partition exists before its rows arrive
                partition_queries.partition_history(conn, day, 0)
            print(f"seeding {rows:,} history rows (partitioned)…", file=sys.stderr)
            seed_history_day(url, day, rows)
            report = prune(engine, policy, now=now)
            result.drop_seconds = report.seconds
            result.dropped = report.dropped_partitions
            result.dropped_rows = report.removed["transition_history"]
        finally:
            dispose(engine)
    return result


def print_history_day(h: HistoryDay) -> None:
    print(f"\n| pruning one day of transition_history ({h.rows:,} rows) | seconds | ratio |")
    print("|---|---:|---:|")
    for label, seconds in h.delete_seconds.items():
        ratio = seconds / h.drop_seconds if h.drop_seconds else float("nan")
        print(f"| {label} | {seconds:.2f} | {ratio:,.0f}x |")
    print(f"| partitioned: drop the day's partition (whole pass) | {h.drop_seconds:.3f} | 1x |")
    print(f"dropped {', '.join(h.dropped) or 'nothing'} ({h.dropped_rows:,} rows)")


def print_table(r: Results, args: argparse.Namespace) -> None:
    print(
        f"\nretention on PostgreSQL: {r.rows:,} completed events past their window "
        f"(seeded in {r.seed_seconds:.0f}s), {args.workers} workers x {args.concurrency} threads\n"
    )
    print("| pruner alone | rows deleted/s |")
    print("|---|---:|")
    for label, value in r.alone.items():
        print(f"| {label} | {value:,.0f} |")
    per_day = r.rows // SEED_DAYS
    print(
        f"\none seeded day ({per_day:,} rows) at the default pacing: {r.day_seconds:.0f}s; "
        f"VACUUM ANALYZE afterwards: {r.vacuum_seconds:.0f}s. Partitioning (dropping a day "
        "instead of deleting it) is for transition_history only: see below and the README."
    )
    plain = statistics.median(r.drain_plain)
    pruned = statistics.median(r.drain_pruned)
    beside = statistics.median(r.pruned_beside)
    ratio = pruned / plain if plain else float("nan")
    verdict = "ok" if ratio >= TARGET_DRAIN_RATIO else "MISSED"
    print(
        f"\n| drain {DRAIN_ENTITIES:,}x{DRAIN_EVENTS_PER_ENTITY} (ev/s), "
        f"median of {args.rounds} | without pruning | with pruning | ratio |"
    )
    print("|---|---:|---:|---:|")
    print(f"| {args.workers} workers | {plain:,.0f} | {pruned:,.0f} | {ratio:.2f} |")
    print(
        f"\nrounds without: {', '.join(f'{v:,.0f}' for v in r.drain_plain)}; "
        f"with: {', '.join(f'{v:,.0f}' for v in r.drain_pruned)}"
    )
    print(f"pruner beside the drain (default batch and pause): {beside:,.0f} rows deleted/s")
    print(f"drain with pruning ÷ without: {ratio:.2f} (target ≥ {TARGET_DRAIN_RATIO}) → {verdict}")
    for note in r.notes:
        print(f"note: {note}")
    if r.history_day is not None:
        print_history_day(r.history_day)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--history-day-rows", type=int, default=500_000)
    parser.add_argument(
        "--only-history-day",
        action="store_true",
        help="only part 4: one day of history, deleted row by row vs its partition dropped",
    )
    args = parser.parse_args(argv)
    if args.only_history_day:
        print_history_day(measure_history_day(args.history_day_rows))
        return 0
    print_table(run(args), args)
    return 0


if __name__ == "__main__":
    with report.recorded("retention") as run:
        run.exit_code = main()
    sys.exit(run.exit_code)
