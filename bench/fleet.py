"""Fleet benchmark: submit rate, drain rate and submit→applied latency for 1 / 2 / 4 workers.

    .venv/bin/python bench/fleet.py [--workers 1 2 4] [--concurrency 4] [--pool threads]
    .venv/bin/python bench/fleet.py --latency [--workers 3] [--rates 250 500 1000]
        [--duration 10] [--burst 10000] [--probes 100]

``--latency`` runs ``bench/fleet_latency.py`` instead (open-loop rates, a probe right after a
burst, CPU per event; one fleet of ``--workers`` processes, 3 by default).

Runs on the local PostgreSQL (a database it creates and drops) and a private ``redis-server`` it
starts and stops, so nothing shared is touched. In the same run it measures a peer: the round
trip of a no-op Celery task on the same broker (what a hand-rolled Celery FSM worker could reach
at best), and prints ratios. Numbers are printed, never asserted.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import report  # bench/report.py: every run is saved as JSON
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.fleet_latency import add_arguments as add_latency_arguments  # noqa: E402
from bench.fleet_latency import print_report as print_latency_report  # noqa: E402
from bench.fleet_latency import run as run_latency  # noqa: E402
from bench.fleet_setup import (  # noqa: E402
    DRAIN_TIMEOUT_SECONDS,
    MACHINE,
    MACHINES,
    bench_database,
    measure_drain,
    truncate,
    wait_drained,
)
from tests.support.fleet_database import create_schema, pending_count  # noqa: E402
from tests.support.fleet_processes import RedisServer, WorkerFleet, producer_runtime  # noqa: E402
from tests.support.waiting import wait_until  # noqa: E402

SINGLE_SUBMITS = 3000
#: Submits before the single-producer clock starts (a producer process is long-lived).
PRODUCER_WARM_UP = 50
SUBMIT_THREADS = 8
BATCH_SUBMITS = 20_000
LATENCY_SAMPLES = 200
LATENCY_GAP_SECONDS = 0.02  # at most 50 events/s: "low load"
LATENCY_POLL_SECONDS = 0.0005
PEER_TASKS = 3000
LATENCY_WORKERS = 3
READY_TIMEOUT_SECONDS = 60.0

TARGETS = {
    "submit_single": 1500.0,
    "submit_batch": 20_000.0,
    "drain": 2000.0,
    "p50_ms": 20.0,
    "p99_ms": 100.0,
}
REFERENCE_DRAIN = (100, 190)  # events/s of the public reference worker on this machine
REFERENCE_SUBMIT = 55  # submissions/s of the same


@dataclass
class Row:
    """The measurements for one fleet size."""

    workers: int
    submit_single: float = 0.0
    submit_threads: float = 0.0
    submit_batch: float = 0.0
    drain: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    notes: list[str] = field(default_factory=list)


def warm_up(engine: sa.Engine, url: str, workers: int) -> None:
    """Submit one event per worker and wait until they are applied (workers are up)."""
    from pystator.worker import submit_event_sync

    for n in range(workers * 4):
        submit_event_sync(MACHINE, f"warm-{n}", "next", db_url=url)
    wait_until(
        lambda: pending_count(engine) == 0,
        timeout=READY_TIMEOUT_SECONDS,
        message="workers ready",
    )


def measure_single_submit(url: str) -> float:
    from pystator.worker import submit_event_sync

    for n in range(PRODUCER_WARM_UP):  # connections, prepared statements, broker channel
        submit_event_sync(MACHINE, f"warm-producer-{n}", "next", db_url=url)
    start = time.perf_counter()
    for n in range(SINGLE_SUBMITS):
        submit_event_sync(MACHINE, f"single-{n}", "next", db_url=url)
    return SINGLE_SUBMITS / (time.perf_counter() - start)


def measure_threaded_submit(url: str) -> float:
    """One producer process, ``SUBMIT_THREADS`` threads each calling ``submit_event_sync``."""
    from pystator.worker import submit_event_sync

    per_thread = SINGLE_SUBMITS // SUBMIT_THREADS

    def produce(t: int) -> None:
        for n in range(per_thread):
            submit_event_sync(MACHINE, f"threaded-{t}-{n}", "next", db_url=url)

    threads = [threading.Thread(target=produce, args=(t,)) for t in range(SUBMIT_THREADS)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return per_thread * SUBMIT_THREADS / (time.perf_counter() - start)


def measure_batch_submit(url: str) -> float:
    """Batch-submit events for entities nobody else touches; returns events/s."""
    from pystator.worker import submit_events

    events = [
        {"machine_name": MACHINE, "entity_id": f"batch-{n % 5000}", "trigger": "next"}
        for n in range(BATCH_SUBMITS)
    ]
    start = time.perf_counter()
    submit_events(events, db_url=url)
    return BATCH_SUBMITS / (time.perf_counter() - start)


def measure_latency(engine: sa.Engine, url: str) -> tuple[float, float]:
    """p50/p99 of submit→applied (ms) at low load, one event at a time, seen from the producer.

    The clock starts before ``submit_event_sync`` and stops when a poll (every
    ``LATENCY_POLL_SECONDS``) first sees the event finished: commit to visibility included.
    """
    from pystator.worker import submit_event_sync

    samples = []
    query = sa.text("SELECT status FROM worker_events WHERE id = :id")
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT")
        for n in range(LATENCY_SAMPLES):
            start = time.perf_counter()
            event_id = submit_event_sync(MACHINE, f"lat-{n}", "next", db_url=url)
            deadline = start + DRAIN_TIMEOUT_SECONDS
            while conn.execute(query, {"id": event_id}).scalar_one() == "pending":
                if time.perf_counter() > deadline:
                    raise TimeoutError(f"event {event_id} not applied")
                time.sleep(LATENCY_POLL_SECONDS)
            samples.append((time.perf_counter() - start) * 1000)
            time.sleep(LATENCY_GAP_SECONDS)  # pacing the producer is the point here
    samples.sort()
    return percentile(samples, 50), percentile(samples, 99)


def percentile(samples: list[float], pct: float) -> float:
    if not samples:
        return float("nan")
    if len(samples) == 1:
        return samples[0]
    return statistics.quantiles(samples, n=100, method="inclusive")[int(pct) - 1]


def measure_submits(row: Row, url: str, settle: Callable[[], None]) -> None:
    """The three submit rates, letting the fleet settle (or clearing the table) in between."""
    row.submit_single = measure_single_submit(url)
    settle()
    row.submit_threads = measure_threaded_submit(url)
    settle()
    row.submit_batch = measure_batch_submit(url)
    settle()


def measure_fleet(url: str, broker: RedisServer, args: argparse.Namespace, n: int) -> Row:
    engine = sa.create_engine(url)
    truncate(engine)
    row = Row(workers=n)
    with (
        tempfile.TemporaryDirectory() as logs,
        producer_runtime(url, broker.url, MACHINES),
        WorkerFleet(
            database_url=url,
            broker_url=broker.url,
            log_dir=Path(logs),
            concurrency=args.concurrency,
            pool=args.pool,
            machines=MACHINES,
            app=None,
        ) as fleet,
    ):
        fleet.start_all(n)
        try:
            if n == 0:  # the producer alone: no worker competes for the CPU
                measure_submits(row, url, lambda: truncate(engine))
            else:
                warm_up(engine, url, n)
                measure_submits(row, url, lambda: wait_drained(engine))
                row.drain = measure_drain(engine, url)
                row.p50_ms, row.p99_ms = measure_latency(engine, url)
        except TimeoutError as exc:
            row.notes.append(str(exc))
            print(fleet.log_tail(), file=sys.stderr)
        fleet.stop_all()
    engine.dispose()
    return row


PEER_POOLS = (("solo", 1), ("prefork", 2), ("threads", 4))


def measure_celery_peer(broker: RedisServer) -> tuple[float, str]:
    """Best round trips/s of a no-op Celery task over a few pools, on the same broker."""
    base = broker.url.rsplit("/", 1)[0]
    urls = {"BENCH_CELERY_BROKER": f"{base}/1", "BENCH_CELERY_BACKEND": f"{base}/2"}
    os.environ.update(urls)  # read by bench.celery_peer at import
    best = (0.0, "")
    for pool, concurrency in PEER_POOLS:
        rate = _peer_round_trips(urls, pool, concurrency)
        best = max(best, (rate, f"--pool {pool} --concurrency {concurrency}"))
    return best


def _peer_round_trips(urls: dict[str, str], pool: str, concurrency: int) -> float:
    env = dict(os.environ, PYTHONPATH=str(ROOT), **urls)
    worker = subprocess.Popen(
        [
            *(sys.executable, "-m", "celery", "-A", "bench.celery_peer", "worker"),
            *("--pool", pool, "--concurrency", str(concurrency)),
            *("--loglevel", "WARNING", "--without-gossip", "--without-mingle"),
            "--without-heartbeat",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        from celery.result import ResultSet

        from bench.celery_peer import noop

        noop.delay(0).get(timeout=READY_TIMEOUT_SECONDS)  # the worker is up
        start = time.perf_counter()
        results = ResultSet([noop.delay(n) for n in range(PEER_TASKS)])
        results.join_native(timeout=DRAIN_TIMEOUT_SECONDS)
        return PEER_TASKS / (time.perf_counter() - start)
    finally:
        worker.terminate()
        worker.wait(timeout=30)


def verdict(value: float, target: float, *, lower_is_better: bool = False) -> str:
    ok = value <= target if lower_is_better else value >= target
    return "ok" if ok else "MISSED"


def print_table(rows: list[Row], peer: float, peer_config: str, args: argparse.Namespace) -> None:
    print(f"\nfleet on PostgreSQL + Redis, `--concurrency {args.concurrency} --pool {args.pool}`")
    print(
        f"peer: no-op Celery task round trip on the same broker: {peer:,.0f} tasks/s "
        f"(best of {len(PEER_POOLS)} pools: `{peer_config}`)\n"
    )
    print(
        "| workers | submit, 1 thread (ev/s) | submit, 1 process x "
        f"{SUBMIT_THREADS} threads (ev/s) | submit batch (ev/s) | drain 1,000x5 (ev/s) "
        "| drain ÷ Celery no-op | latency p50 (ms) | latency p99 (ms) |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        applied = (
            f"{r.drain:,.0f} | {r.drain / peer:.2f}x | {r.p50_ms:.1f} | {r.p99_ms:.1f}"
            if r.workers
            else "- | - | - | -"
        )
        label = r.workers or "0 (producer alone)"
        print(
            f"| {label} | {r.submit_single:,.0f} | {r.submit_threads:,.0f} "
            f"| {r.submit_batch:,.0f} | {applied} |"
        )
    print(
        f"| target | ≥ {TARGETS['submit_single']:,.0f} | | ≥ {TARGETS['submit_batch']:,.0f} "
        f"| ≥ {TARGETS['drain']:,.0f} | | ≤ {TARGETS['p50_ms']:.0f} | ≤ {TARGETS['p99_ms']:.0f} |"
    )
    fleets = [r for r in rows if r.workers] or rows
    best = max(fleets, key=lambda r: r.drain)
    print()
    for name, value in (
        ("submit single", max(r.submit_single for r in rows)),
        ("submit batch", max(r.submit_batch for r in rows)),
        ("drain", best.drain),
    ):
        key = {"submit single": "submit_single", "submit batch": "submit_batch"}.get(name, name)
        print(
            f"{name}: best {value:,.0f}/s vs target {TARGETS[key]:,.0f}/s → {verdict(value, TARGETS[key])}"
        )
    single = max(r.submit_single for r in rows)
    print(
        "vs the public reference worker (earlier figures on this machine, not re-measured here: "
        f"drain {REFERENCE_DRAIN[0]}-{REFERENCE_DRAIN[1]}/s, submit {REFERENCE_SUBMIT}/s): drain "
        f"{best.drain / REFERENCE_DRAIN[1]:.0f}-{best.drain / REFERENCE_DRAIN[0]:.0f}x, "
        f"submit {single / REFERENCE_SUBMIT:.1f}x"
    )
    low = min(fleets, key=lambda r: r.p99_ms)
    print(
        f"latency p50 {low.p50_ms:.1f} ms → {verdict(low.p50_ms, TARGETS['p50_ms'], lower_is_better=True)}"
    )
    print(
        f"latency p99 {low.p99_ms:.1f} ms → {verdict(low.p99_ms, TARGETS['p99_ms'], lower_is_better=True)}"
    )
    for r in rows:
        for note in r.notes:
            print(f"note ({r.workers} workers): {note}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--workers",
        type=int,
        nargs="+",
        default=None,
        help="0 = producer alone (default 0 1 2 4; with --latency one number, default 3)",
    )
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--pool", default="threads", choices=["threads", "prefork", "solo"])
    parser.add_argument("--no-peer", action="store_true", help="skip the Celery no-op baseline")
    parser.add_argument(
        "--latency", action="store_true", help="open loop and after-burst probe instead"
    )
    add_latency_arguments(parser)
    args = parser.parse_args(argv)
    if args.latency:
        workers = args.workers or [LATENCY_WORKERS]
        if len(workers) != 1 or workers[0] < 1:
            parser.error("--latency takes one fleet size: --workers N (N >= 1)")
        args.workers = workers[0]
        print_latency_report(run_latency(args))
        return 0
    args.workers = args.workers or [0, 1, 2, 4]
    with tempfile.TemporaryDirectory() as tmp, bench_database() as url:
        broker = RedisServer(log_path=Path(tmp) / "redis.log")
        with broker:
            create_schema(url)
            rows = [measure_fleet(url, broker, args, n) for n in args.workers]
            peer, peer_config = (float("nan"), "") if args.no_peer else measure_celery_peer(broker)
    print_table(rows, peer, peer_config, args)
    return 0


if __name__ == "__main__":
    with report.recorded("fleet_latency" if "--latency" in sys.argv else "fleet") as run:
        run.exit_code = main()
    sys.exit(run.exit_code)
