"""Cold start and scale-out of the fleet: the modes ``cold`` and ``scale-out`` of
``bench/fleet_latency.py`` (see there for the set-up they share).

- **cold**: a warm fleet first (the 1,000 x 5 drain three times, a burst of single submits
  then ``probes`` fresh events: the same hour's comparison), then the workers are stopped,
  ``backlog`` events over ``backlog / 5`` entities are submitted one by one with no worker
  running, and the workers are started again. Reported: the nudges left in the broker before
  the start and after the drain; time from the workers' start (spawned, and ready: their
  ``worker_starting`` line) to the first applied event; the drain rate (first to last applied
  event, by the database's clock, and from the spawn); then ``probes`` fresh single events one
  after another, each timed from its submit until a poll sees it applied.
- **scale-out**: one worker under open-loop load (``rate`` events/s for ``duration`` seconds),
  two more started at ``duration / 2``; latency of each event (the database's history time
  minus its submit time) before and after.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import redis
import sqlalchemy as sa

from bench.fleet_setup import MACHINE, measure_drain, truncate
from pystator.fsm_core.errors import StoreUnavailableError
from pystator.worker import submit_event_sync
from tests.support.fleet_database import pending_count
from tests.support.fleet_processes import WorkerFleet
from tests.support.waiting import wait_until

BACKLOG_THREADS = 2
EVENTS_PER_ENTITY = 5
SETTLE_SECONDS = 600.0
POLL_SECONDS = 0.0005
#: What any worker imports before its first transaction, however it were built: the libraries
#: the stack prescribes for its database (SQLAlchemy, psycopg), its logs (structlog) and its
#: machine files (PyYAML). The import floor runs these in fresh interpreters.
FLOOR_IMPORTS = (
    "import sqlalchemy, sqlalchemy.dialects.postgresql.psycopg, psycopg, structlog, yaml"
)


@dataclass
class ColdReport:
    """What the cold-start mode measured."""

    backlog: int = 0
    workers: int = 0
    warm_drains: list[float] = field(default_factory=list)
    warm_probes: list[float] = field(default_factory=list)
    depth_before: int = 0
    depth_after_drain: int = 0
    first_applied_from_spawn_ms: float = 0.0
    first_applied_from_ready_ms: float = 0.0
    drain_rate: float = 0.0  # first to last applied, database clock
    drain_rate_from_spawn: float = 0.0
    drain_rate_all_up: float = 0.0  # from the last worker's start-up drain to the last applied
    left_out: int = 0  # nudges the producer's gate kept out of the broker
    probes: list[float] = field(default_factory=list)
    ready_spread_ms: float = 0.0  # first to last worker ready
    floor_ms: tuple[float, float] = (0.0, 0.0)  # import floor: first and last interpreter done
    startup_drains: list[tuple[int, float]] = field(default_factory=list)  # (events, seconds)


@dataclass
class ScaleReport:
    """What the scale-out mode measured."""

    rate: int = 0
    duration: float = 0.0
    achieved: float = 0.0
    before: list[float] = field(default_factory=list)  # ms, events submitted before the add
    after: list[float] = field(default_factory=list)  # ms, events submitted after it


def db_now(engine: sa.Engine) -> datetime:
    with engine.connect() as conn:
        return conn.execute(sa.text("SELECT clock_timestamp()")).scalar_one()


def import_floor(processes: int) -> tuple[float, float]:
    """Milliseconds from spawning ``processes`` interpreters together, each importing
    :data:`FLOOR_IMPORTS` and exiting, to the first and the last exit: on this machine, at
    this moment, no worker process could have run a transaction sooner."""
    begin = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, "-c", FLOOR_IMPORTS]) for _ in range(processes)]
    done = []
    for proc in procs:
        if proc.wait() != 0:
            raise RuntimeError(f"the import floor's interpreter failed: {FLOOR_IMPORTS}")
        done.append((time.perf_counter() - begin) * 1000)
    return min(done), max(done)


def submit_backlog(url: str, events: int) -> None:
    """``events`` single submits over ``events / 5`` entities (5 each, in order)."""
    entities = max(events // EVENTS_PER_ENTITY, 1)

    def produce(offset: int) -> None:
        for n in range(offset, events, BACKLOG_THREADS):
            for _attempt in range(10):  # a busy machine may time a pool wait out: not inserted
                try:
                    submit_event_sync(MACHINE, f"cold-{n % entities}", "next", db_url=url)
                    break
                except StoreUnavailableError:
                    time.sleep(0.1)

    threads = [threading.Thread(target=produce, args=(t,)) for t in range(BACKLOG_THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def probe(engine: sa.Engine, url: str, count: int, prefix: str) -> list[float]:
    """``count`` single events one after another, each timed until a poll sees it applied."""
    samples: list[float] = []
    query = sa.text("SELECT status FROM worker_events WHERE id = :id")
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT")
        for n in range(count):
            begin = time.perf_counter()
            event_id = submit_event_sync(MACHINE, f"{prefix}-{n}", "next", db_url=url)
            while conn.execute(query, {"id": event_id}).scalar_one() == "pending":
                if time.perf_counter() - begin > SETTLE_SECONDS:
                    raise TimeoutError(f"probe {event_id} not applied")
                time.sleep(POLL_SECONDS)
            samples.append((time.perf_counter() - begin) * 1000)
    return samples


def log_lines(log_dir: Path, event: str, since: float) -> list[dict[str, Any]]:
    """The workers' JSON log lines of ``event`` written after ``since`` (epoch seconds)."""
    found = []
    for path in log_dir.glob("worker-*.log"):
        for line in path.read_text(errors="replace").splitlines():
            if f'"{event}"' not in line:
                continue
            try:  # under Celery a line may carry its logger's prefix before the JSON
                entry = json.loads(line[line.index("{") :])
                stamp = datetime.fromisoformat(entry["timestamp"]).timestamp()
            except (ValueError, KeyError):
                continue
            if stamp >= since:
                found.append({**entry, "at": stamp})
    return found


def cold_start(
    engine: sa.Engine,
    url: str,
    fleet: WorkerFleet,
    broker: redis.Redis,
    runtime: Any,
    *,
    workers: int,
    backlog: int,
    probes: int,
    warm_burst: Any,
) -> ColdReport:
    report = ColdReport(backlog=backlog, workers=workers)
    queue = runtime.queue
    fleet.start_all(workers)
    wait_until(lambda: fleet_ready(engine, url), timeout=120, message="warm workers")
    for n in range(3):
        truncate(engine)
        report.warm_drains.append(measure_drain(engine, url, prefix=f"warm{n}"))
    truncate(engine)
    _, report.warm_probes = warm_burst(engine, url, backlog, probes)
    fleet.stop_all()
    truncate(engine)
    broker.delete(queue)

    gate = getattr(getattr(runtime.nudger, "inner", None), "gate", None)
    left_out = gate.left_out if gate is not None else 0
    submit_backlog(url, backlog)
    runtime.nudger.flush(30)
    report.left_out = (gate.left_out if gate is not None else 0) - left_out
    report.depth_before = int(broker.llen(queue))
    report.floor_ms = import_floor(workers)  # the same moment's machine, for comparison
    spawned_db = db_now(engine)
    spawned = time.time()
    fleet.start_all(workers)
    wait_until(
        lambda: pending_count(engine) == 0, timeout=SETTLE_SECONDS, interval=0.01, message="drain"
    )
    report.depth_after_drain = int(broker.llen(queue))
    with engine.connect() as conn:
        first, last = conn.execute(
            sa.text("SELECT min(created_at), max(created_at) FROM transition_history")
        ).one()
    report.first_applied_from_spawn_ms = (first - spawned_db).total_seconds() * 1000
    starts = [e["at"] for e in log_lines(fleet.log_dir, "startup_drain_started", spawned)]
    if starts:  # the first worker able to work, and its first applied event
        report.first_applied_from_ready_ms = (first.timestamp() - min(starts)) * 1000
    readies = [e["at"] for e in log_lines(fleet.log_dir, "startup_drain_started", spawned)]
    if readies:
        report.ready_spread_ms = (max(readies) - min(readies)) * 1000
        all_up = datetime.fromtimestamp(max(readies), tz=first.tzinfo)
        with engine.connect() as conn:
            after = conn.execute(
                sa.text("SELECT count(*) FROM transition_history WHERE created_at >= :t"),
                {"t": all_up},
            ).scalar_one()
        if last > all_up:
            report.drain_rate_all_up = int(after) / (last - all_up).total_seconds()
    report.startup_drains = [
        (int(e.get("events", 0)), float(e.get("seconds", 0.0)))
        for e in log_lines(fleet.log_dir, "startup_backlog_drained", spawned)
    ]
    with engine.connect() as conn:
        applied = int(conn.execute(sa.text("SELECT count(*) FROM transition_history")).scalar_one())
    report.backlog = applied
    report.drain_rate = applied / max((last - first).total_seconds(), 1e-6)
    report.drain_rate_from_spawn = applied / max((last - spawned_db).total_seconds(), 1e-6)
    report.probes = probe(engine, url, probes, "fresh")
    report.startup_drains = [
        (int(e.get("events", 0)), float(e.get("seconds", 0.0)))
        for e in log_lines(fleet.log_dir, "startup_backlog_drained", spawned)
    ]
    fleet.stop_all()
    if os.environ.get("PYSTATOR_BENCH_KEEP_LOGS"):
        shutil.copytree(fleet.log_dir, os.environ["PYSTATOR_BENCH_KEEP_LOGS"], dirs_exist_ok=True)
    return report


def fleet_ready(engine: sa.Engine, url: str) -> bool:
    """True once a warm-up event is applied (the workers consume)."""
    submit_event_sync(MACHINE, f"ready-{time.monotonic_ns()}", "next", db_url=url)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if pending_count(engine) == 0:
            return True
        time.sleep(0.05)
    return False


def scale_out(
    engine: sa.Engine, url: str, fleet: WorkerFleet, *, rate: int, duration: float, add: int
) -> ScaleReport:
    """One worker, open-loop ``rate`` events/s; ``add`` more workers half-way."""
    report = ScaleReport(rate=rate, duration=duration)
    truncate(engine)
    fleet.start_all(1)
    wait_until(lambda: fleet_ready(engine, url), timeout=120, message="the first worker")
    truncate(engine)
    total = int(rate * duration)
    start = time.perf_counter() + 0.2
    switch = total // 2

    def produce(offset: int) -> None:
        for n in range(offset, total, 2):
            delay = start + n / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            submit_event_sync(MACHINE, f"so-{n}", "next", db_url=url)

    def add_workers() -> None:
        delay = start + duration / 2 - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        for slot in range(1, add + 1):
            fleet.start(slot)

    threads = [threading.Thread(target=produce, args=(t,)) for t in range(2)]
    threads.append(threading.Thread(target=add_workers))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    report.achieved = total / (time.perf_counter() - start)
    wait_until(lambda: pending_count(engine) == 0, timeout=SETTLE_SECONDS, interval=0.1)
    query = sa.text(
        "SELECT CAST(substr(e.entity_id, 4) AS integer), "
        "EXTRACT(EPOCH FROM (h.created_at - e.created_at)) * 1000 "
        "FROM worker_events e JOIN transition_history h ON h.event_id = e.id "
        "WHERE e.entity_id LIKE 'so-%'"
    )
    with engine.connect() as conn:
        for n, ms in conn.execute(query):
            (report.before if int(n) < switch else report.after).append(float(ms))
    fleet.stop_all()
    return report


def pct(samples: list[float], q: int) -> float:
    if len(samples) < 2:
        return samples[0] if samples else float("nan")
    return statistics.quantiles(sorted(samples), n=100, method="inclusive")[q - 1]


def print_cold(report: ColdReport) -> None:
    warm = statistics.median(report.warm_drains) if report.warm_drains else float("nan")
    print(f"\ncold start: {report.workers} workers, a backlog of {report.backlog:,} events")
    print("\n| | warm (same run) | cold |")
    print("|---|---:|---:|")
    print(
        f"| drain (events/s) | {warm:,.0f} (1,000 x 5, median of 3) | {report.drain_rate:,.0f} "
        f"({report.drain_rate / warm:.2f}x; {report.drain_rate_from_spawn:,.0f} from the spawn; "
        f"{report.drain_rate_all_up:,.0f} = {report.drain_rate_all_up / warm:.2f}x once every "
        "worker was draining) |"
    )
    wp, cp = report.warm_probes, report.probes
    print(
        f"| fresh events after the backlog p50 / p99 / max (ms) | {pct(wp, 50):.1f} / "
        f"{pct(wp, 99):.1f} / {max(wp):.1f} | {pct(cp, 50):.1f} / {pct(cp, 99):.1f} / "
        f"{max(cp):.1f} |"
    )
    print(f"| first fresh event (ms) | {wp[0]:.1f} | {cp[0]:.1f} |")
    print(
        f"\nfirst applied event: {report.first_applied_from_spawn_ms:,.0f} ms after the spawn, "
        f"{report.first_applied_from_ready_ms:,.0f} ms after the first worker was up (its "
        "start-up drain began)"
    )
    first, last = report.floor_ms
    print(
        f"import floor: {report.workers} interpreters spawned together, each importing "
        f"SQLAlchemy, psycopg, structlog and PyYAML only, exited after {first:,.0f} ms (first) "
        f"to {last:,.0f} ms (last); the first applied event came "
        f"{report.first_applied_from_spawn_ms - first:,.0f} ms after the first of them"
    )
    print(
        f"nudges in the broker: {report.depth_before} before the start "
        f"({report.left_out:,} left out by the gate), {report.depth_after_drain} after the drain"
    )
    print(
        f"workers' start-up drains began within {report.ready_spread_ms:,.0f} ms of each other; "
        "start-up drains "
        "(events, seconds): " + ", ".join(f"({n:,}, {t:.2f})" for n, t in report.startup_drains)
    )


def print_scale(report: ScaleReport) -> None:
    print(
        f"\nscale-out: 1 worker under {report.rate} events/s (achieved {report.achieved:,.0f}), "
        f"2 more at {report.duration / 2:.0f} s"
    )
    print("\n| events submitted | count | p50 ms | p99 ms | max ms |")
    print("|---|---:|---:|---:|---:|")
    for name, samples in (("before the add", report.before), ("after the add", report.after)):
        print(
            f"| {name} | {len(samples):,} | {pct(samples, 50):.1f} | {pct(samples, 99):.1f} | "
            f"{max(samples):.1f} |"
        )


__all__ = ["ColdReport", "ScaleReport", "cold_start", "print_cold", "print_scale", "scale_out"]
