"""Soak: the fleet under steady load for a long time, with workers killed along the way.

    .venv/bin/python bench/soak.py [--minutes 20] [--rate 300] [--workers 3]
        [--plot docs/operations/soak.png]        (``make soak``; not part of CI)

On a database it creates and drops (the local PostgreSQL) with a private ``redis-server``:
``--workers`` ``pystator worker --concurrency 2`` processes drive ``bench_soak``
(``bench/machines/bench_soak.yaml``: ``start`` arms a 3 s timer, ``finish`` cancels it) at an
open-loop ``--rate`` events/s over 2,000 entities, for ``--minutes``. Every 2 to 4 minutes one
worker is SIGKILLed and started again. The retention pruner runs every minute in the workers
with windows of a minute, so the tables stay small. Every 5 s it samples each worker's resident
memory, the broker's queue depth, the due backlog and the rows in ``worker_events``; at the end
it waits for the backlog to drain and checks that every event reached a final state.

It writes the samples as JSON (``--out``) and plots them (``--plot``, needs matplotlib: the
``bench`` extra). The closing lines say whether memory and queue depth stayed flat.
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import redis
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.fleet_latency import rss_mb  # noqa: E402
from bench.fleet_setup import MACHINES, bench_database  # noqa: E402
from pystator.fsm_core.errors import StoreUnavailableError  # noqa: E402
from pystator.worker import submit_event_sync  # noqa: E402
from tests.support.fleet_database import create_schema, pending_count  # noqa: E402
from tests.support.fleet_processes import RedisServer, WorkerFleet, producer_runtime  # noqa: E402
from tests.support.waiting import wait_until  # noqa: E402

MACHINE = "bench_soak"
ENTITIES = 2000
SAMPLE_SECONDS = 5.0
KILL_EVERY = (120.0, 240.0)
PRODUCER_THREADS = 2
#: Pruning in the workers: every minute, rows older than a minute (retention windows in days).
SOAK_ENV = {
    "PYSTATOR_PRUNE_INTERVAL_SECONDS": "60",
    "PYSTATOR_RETENTION_COMPLETED_DAYS": str(60 / 86400),
    "PYSTATOR_RETENTION_REJECTED_DAYS": str(60 / 86400),
    "PYSTATOR_RETENTION_HISTORY_DAYS": str(60 / 86400),
    "PYSTATOR_RETENTION_ACTIONS_DAYS": str(60 / 86400),
    "PYSTATOR_HEARTBEAT_SECONDS": "5",
}
#: Memory is "flat" when a worker grows by less than this after its first two minutes.
FLAT_RSS_MB = 10.0
WARMUP_SECONDS = 120.0


@dataclass
class Sample:
    """One look at the fleet."""

    at: float  # seconds since the start
    rss_mb: dict[int, float]  # by worker slot
    queue: int
    due: int
    rows: int


@dataclass
class SoakReport:
    """Everything the soak measured."""

    minutes: float
    rate: int
    workers: int
    submitted: int = 0
    kills: list[float] = field(default_factory=list)  # seconds since the start
    samples: list[Sample] = field(default_factory=list)
    statuses: dict[str, int] = field(default_factory=dict)
    pending_timers_after: int = 0
    started_at: str = ""


def produce(url: str, rate: int, stop: threading.Event, counter: list[int], offset: int) -> None:
    rng = random.Random(offset)
    start = time.perf_counter()
    n = offset
    while not stop.is_set():
        delay = start + n / rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        entity = f"s{rng.randrange(ENTITIES)}"
        trigger = "start" if rng.random() < 0.6 else "finish"
        try:
            submit_event_sync(MACHINE, entity, trigger, db_url=url)
            counter[offset] += 1
        except StoreUnavailableError as exc:  # a busy machine timed a pool wait out
            print(f"submit failed: {exc}", flush=True)
        n += PRODUCER_THREADS


def sample(
    engine: sa.Engine, fleet: WorkerFleet, broker: redis.Redis, queue: str, at: float
) -> Sample:
    with engine.connect() as conn:
        due = conn.execute(
            sa.text(
                "SELECT count(*) FROM worker_events WHERE status = 'pending' "
                "AND fires_at <= statement_timestamp()"
            )
        ).scalar_one()
        rows = conn.execute(sa.text("SELECT count(*) FROM worker_events")).scalar_one()
    return Sample(
        at=round(at, 1),
        rss_mb={slot: round(rss_mb(p.pid), 1) for slot, p in fleet.procs.items()},
        queue=int(broker.llen(queue)),
        due=int(due),
        rows=int(rows),
    )


def due_timers(engine: sa.Engine) -> int:
    """Armed timers whose time has come (by the database's clock) and that did not fire."""
    with engine.connect() as conn:
        query = "SELECT count(*) FROM worker_timers WHERE due_at <= statement_timestamp()"
        return int(conn.execute(sa.text(query)).scalar_one())


def run(args: argparse.Namespace) -> SoakReport:
    report = SoakReport(
        minutes=args.minutes,
        rate=args.rate,
        workers=args.workers,
        started_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    rng = random.Random(29)
    with (
        tempfile.TemporaryDirectory() as tmp,
        bench_database() as url,
        RedisServer(log_path=Path(tmp) / "redis.log") as server,
    ):
        create_schema(url)
        engine = sa.create_engine(url)
        broker = redis.Redis.from_url(server.url)
        with (
            producer_runtime(url, server.url, MACHINES) as runtime,
            WorkerFleet(
                database_url=url,
                broker_url=server.url,
                log_dir=Path(tmp),
                concurrency=2,
                machines=MACHINES,
                app=None,
                extra_env=SOAK_ENV,
            ) as fleet,
        ):
            fleet.start_all(args.workers)
            stop = threading.Event()
            counter = [0] * PRODUCER_THREADS
            threads = [
                threading.Thread(target=produce, args=(url, args.rate, stop, counter, t))
                for t in range(PRODUCER_THREADS)
            ]
            for thread in threads:
                thread.start()
            began = time.monotonic()
            end = began + args.minutes * 60
            next_kill = began + rng.uniform(*KILL_EVERY)
            while time.monotonic() < end:
                time.sleep(SAMPLE_SECONDS)
                now = time.monotonic()
                if now >= next_kill:
                    slot = fleet.kill_and_restart(rng)
                    report.kills.append(round(now - began, 1))
                    print(f"{now - began:7.1f} s  SIGKILL worker {slot}", flush=True)
                    next_kill = now + rng.uniform(*KILL_EVERY)
                taken = sample(engine, fleet, broker, runtime.queue, now - began)
                report.samples.append(taken)
                print(
                    f"{taken.at:7.1f} s  rss {list(taken.rss_mb.values())} MB  "
                    f"queue {taken.queue}  due {taken.due}  rows {taken.rows:,}",
                    flush=True,
                )
            stop.set()
            for thread in threads:
                thread.join()
            report.submitted = sum(counter)
            # settled: nothing pending and no timer due (the last ones armed fire within 3 s)
            wait_until(
                lambda: pending_count(engine) == 0 and due_timers(engine) == 0,
                timeout=300,
                interval=0.5,
                message="the backlog and the due timers to settle",
            )
            with engine.connect() as conn:
                report.statuses = {
                    str(s): int(n)
                    for s, n in conn.execute(
                        sa.text("SELECT status, count(*) FROM worker_events GROUP BY status")
                    )
                }
                report.pending_timers_after = due_timers(engine)
            fleet.stop_all()
        broker.close()
        engine.dispose()
    return report


def rss_growth(report: SoakReport) -> dict[int, float]:
    """Per slot: the largest growth of one worker process's memory after its warm-up (a kill
    starts a new process in the slot)."""
    growth: dict[int, float] = {}
    boundaries = [0.0, *report.kills, float("inf")]
    for slot in range(report.workers):
        for start, stop in itertools.pairwise(boundaries):
            life = [
                s.rss_mb[slot]
                for s in report.samples
                if start + WARMUP_SECONDS <= s.at < stop and slot in s.rss_mb and s.rss_mb[slot]
            ]
            if len(life) >= 2:
                growth[slot] = max(growth.get(slot, 0.0), life[-1] - min(life))
    return growth


def print_report(report: SoakReport) -> None:
    queues = [s.queue for s in report.samples]
    growth = rss_growth(report)
    print(
        f"\nsoak: {report.minutes:g} min at {report.rate} events/s, {report.workers} workers, "
        f"{len(report.kills)} SIGKILLs at {report.kills} s"
    )
    print(f"submitted {report.submitted:,}; final statuses {report.statuses}")
    print(f"due timers left after the drain: {report.pending_timers_after}")
    print(
        f"broker queue depth: median {statistics.median(queues):.0f}, max {max(queues)}; "
        f"due backlog max {max(s.due for s in report.samples)}; "
        f"worker_events rows max {max(s.rows for s in report.samples):,}"
    )
    print(f"worker memory growth after warm-up (MB, worst per slot): {growth}")
    flat = all(g < FLAT_RSS_MB for g in growth.values())
    print(f"memory flat (< {FLAT_RSS_MB:g} MB growth): {'yes' if flat else 'NO'}")


def plot(report: SoakReport, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    minutes = [s.at / 60 for s in report.samples]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 6), sharex=True)
    for slot in range(report.workers):
        top.plot(
            minutes,
            [s.rss_mb.get(slot, float("nan")) for s in report.samples],
            label=f"worker {slot}",
        )
    top.set_ylabel("resident memory (MB)")
    top.legend(loc="lower right", fontsize="small")
    bottom.plot(minutes, [s.queue for s in report.samples], label="nudges in the broker")
    bottom.plot(minutes, [s.due for s in report.samples], label="due backlog (events)")
    bottom.set_ylabel("messages / events")
    bottom.set_xlabel("minutes")
    bottom.legend(loc="upper right", fontsize="small")
    for axis in (top, bottom):
        for kill in report.kills:
            axis.axvline(kill / 60, color="grey", linestyle=":", linewidth=1)
    fig.suptitle(
        f"soak: {report.rate} events/s with timers, {report.workers} workers, a SIGKILL "
        f"(dotted) every 2-4 min, pruner on ({report.started_at})",
        fontsize="medium",
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=20.0)
    parser.add_argument("--rate", type=int, default=300)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None, help="samples as JSON")
    parser.add_argument("--plot", type=Path, default=None, help="a PNG of memory and depth")
    args = parser.parse_args(argv)
    report = run(args)
    print_report(report)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(asdict(report), indent=1))
    if args.plot is not None:
        plot(report, args.plot)
        print(f"plot: {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
