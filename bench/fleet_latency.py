"""Fleet latency under real load: open-loop submit rates, and a probe right after a burst.

    .venv/bin/python bench/fleet_latency.py [--workers 3] [--concurrency 4]
        [--rates 250 500 1000] [--duration 10] [--burst 10000] [--probes 100]
        [--mode warm|cold|scale-out]

``--mode cold`` and ``--mode scale-out`` measure a cold start (a backlog submitted with no
worker running, then the workers started) and adding workers under load: see
``bench/fleet_cold.py``. The default, ``warm``, is what follows.

A companion of ``bench/fleet.py`` (its machine, database and broker set-up). On the local
PostgreSQL (a database it creates and drops) with a private ``redis-server``:

- **drain**: ``bench/fleet.py``'s 1,000 x 5 drain, three times on the same fleet, so the
  latency work is seen not to cost throughput (median reported);
- **open loop**: events for fresh entities are submitted on a fixed schedule (``rate`` per
  second for ``duration`` seconds, by two producer threads), whatever the fleet does; latency
  is the state's write time minus the event's submit time, both as the database records them
  (``transition_history.created_at`` minus ``worker_events.created_at``), so measuring does not
  disturb the fleet;
- **after a burst**: ``burst`` events over ``burst / 5`` entities are submitted one by one as
  fast as four producer threads go; once every one is applied, ``probes`` single events are
  submitted one after another and each is timed from the producer (submit until a poll sees it
  applied). The probe shows whether fresh work waits behind the burst's stale nudges;
- CPU per event of each open-loop rate, split by process (workers, PostgreSQL, the broker,
  this process's producers), from ``/proc``: where the time goes;
- peak RSS of every worker process, sampled every 100 ms.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import redis
import report  # bench/report.py: every run is saved as JSON
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import fleet_cold  # noqa: E402
from bench.fleet_setup import (  # noqa: E402
    MACHINE,
    MACHINES,
    bench_database,
    measure_drain,
    truncate,
)
from tests.support.fleet_database import create_schema, pending_count  # noqa: E402
from tests.support.fleet_processes import RedisServer, WorkerFleet, producer_runtime  # noqa: E402
from tests.support.waiting import wait_until  # noqa: E402

PRODUCER_THREADS = 2
BURST_THREADS = 4
EVENTS_PER_BURST_ENTITY = 5
DRAIN_ROUNDS = 3
IDLE_SECONDS = 5.0
POLL_SECONDS = 0.0005
SETTLE_TIMEOUT_SECONDS = 600.0
LATENCY_TARGETS = {"open_loop_p99_ms": 100.0, "open_loop_max_ms": 250.0, "probe_p99_ms": 100.0}


@dataclass
class OpenLoop:
    """Latencies of one open-loop rate."""

    rate: int
    achieved: float = 0.0
    p50: float = 0.0
    p99: float = 0.0
    max: float = 0.0
    cpu_ms: dict[str, float] = field(default_factory=dict)  # CPU ms per event, by process


@dataclass
class Report:
    """Everything one run measured."""

    workers: int
    concurrency: int
    drains: list[float] = field(default_factory=list)
    open_loop: list[OpenLoop] = field(default_factory=list)
    burst_events: int = 0
    burst_seconds: float = 0.0
    probe_p50: float = 0.0
    probe_p99: float = 0.0
    probe_max: float = 0.0
    probe_first: float = 0.0
    peak_rss_mb: dict[int, float] = field(default_factory=dict)
    idle_cpu_ms: dict[str, float] = field(default_factory=dict)  # CPU ms per second, idle


def percentile(samples: list[float], pct: float) -> float:
    ordered = sorted(samples)
    if len(ordered) < 2:
        return ordered[0] if ordered else float("nan")
    return statistics.quantiles(ordered, n=100, method="inclusive")[int(pct) - 1]


class RssSampler:
    """Peak resident memory of a set of processes (and their children), sampled in a thread."""

    def __init__(self, pids: Callable[[], list[int]]) -> None:
        self.pids = pids
        self.peaks: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            for pid in self.pids():
                self.peaks[pid] = max(self.peaks.get(pid, 0.0), rss_mb(pid))


def rss_mb(pid: int) -> float:
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return 0.0
    for line in lines:
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) of one process so far; 0 when it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def descendants(pids: list[int]) -> list[int]:
    """``pids`` and every process below them (a prefork worker's children)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        parent = int(text[text.rindex(")") + 2 :].split()[1])
        children.setdefault(parent, []).append(int(stat.parent.name))
    found, todo = [], list(pids)
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def postgres_pids() -> list[int]:
    """Every PostgreSQL server process on this machine (the benchmark's database is the only
    busy one)."""
    pids = []
    for comm in Path("/proc").glob("[0-9]*/comm"):
        try:
            if comm.read_text().startswith("postgres"):
                pids.append(int(comm.parent.name))
        except OSError:
            continue
    return pids


class CpuMeter:
    """CPU seconds spent by each part of the set-up between :meth:`start` and :meth:`stop`."""

    def __init__(self, workers: Callable[[], list[int]], broker: int) -> None:
        self.parts: dict[str, Callable[[], float]] = {
            "workers": lambda: sum(process_cpu(p) for p in descendants(workers())),
            "PostgreSQL": lambda: sum(process_cpu(p) for p in postgres_pids()),
            "broker": lambda: process_cpu(broker),
            "producers": lambda: sum(resource.getrusage(resource.RUSAGE_SELF)[:2]),
        }
        self.begin: dict[str, float] = {}

    def start(self) -> None:
        self.begin = {name: read() for name, read in self.parts.items()}

    def per_second_ms(self, seconds: float) -> dict[str, float]:
        """CPU milliseconds per second of each part since :meth:`start`."""
        return self.per_event_ms(seconds)  # the same division, by seconds instead of events

    def per_event_ms(self, events: float) -> dict[str, float]:
        """CPU milliseconds per event of each part since :meth:`start`."""
        return {
            name: (read() - self.begin[name]) * 1000 / events for name, read in self.parts.items()
        }


def open_loop(
    engine: sa.Engine, url: str, rate: int, duration: float, cpu: CpuMeter | None = None
) -> OpenLoop:
    """Submit ``rate`` events/s for ``duration`` s on a fixed schedule; latencies from the DB."""
    from pystator.worker import submit_event_sync

    total = int(rate * duration)
    start = time.perf_counter() + 0.2
    tag = f"ol{rate}"

    def produce(offset: int) -> None:
        for n in range(offset, total, PRODUCER_THREADS):
            delay = start + n / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            submit_event_sync(MACHINE, f"{tag}-{n}", "next", db_url=url)

    threads = [threading.Thread(target=produce, args=(t,)) for t in range(PRODUCER_THREADS)]
    if cpu is not None:
        cpu.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    achieved = total / (time.perf_counter() - start)
    wait_until(lambda: pending_count(engine) == 0, timeout=SETTLE_TIMEOUT_SECONDS, interval=0.1)
    cpu_ms = cpu.per_event_ms(total) if cpu is not None else {}
    query = sa.text(
        "SELECT EXTRACT(EPOCH FROM (h.created_at - e.created_at)) * 1000 "
        "FROM worker_events e JOIN transition_history h ON h.event_id = e.id "
        "WHERE e.entity_id LIKE :tag"
    )
    with engine.connect() as conn:
        samples = [float(v) for v in conn.execute(query, {"tag": f"{tag}-%"}).scalars()]
    return OpenLoop(
        rate=rate,
        achieved=achieved,
        p50=percentile(samples, 50),
        p99=percentile(samples, 99),
        max=max(samples),
        cpu_ms=cpu_ms,
    )


def burst_then_probe(
    engine: sa.Engine, url: str, burst: int, probes: int
) -> tuple[float, list[float]]:
    """A burst of single submits, drained; then ``probes`` single events timed one by one."""
    from pystator.worker import submit_event_sync

    entities = max(burst // EVENTS_PER_BURST_ENTITY, 1)

    def produce(offset: int) -> None:
        for n in range(offset, burst, BURST_THREADS):
            submit_event_sync(MACHINE, f"burst-{n % entities}", "next", db_url=url)

    started = time.perf_counter()
    threads = [threading.Thread(target=produce, args=(t,)) for t in range(BURST_THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wait_until(lambda: pending_count(engine) == 0, timeout=SETTLE_TIMEOUT_SECONDS, interval=0.01)
    burst_seconds = time.perf_counter() - started
    samples: list[float] = []
    query = sa.text("SELECT status FROM worker_events WHERE id = :id")
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT")
        for n in range(probes):
            begin = time.perf_counter()
            event_id = submit_event_sync(MACHINE, f"probe-{n}", "next", db_url=url)
            while conn.execute(query, {"id": event_id}).scalar_one() == "pending":
                if time.perf_counter() - begin > SETTLE_TIMEOUT_SECONDS:
                    raise TimeoutError(f"probe {event_id} not applied")
                time.sleep(POLL_SECONDS)
            samples.append((time.perf_counter() - begin) * 1000)
    return burst_seconds, samples


def run(args: argparse.Namespace) -> Report:
    report = Report(workers=args.workers, concurrency=args.concurrency)
    with tempfile.TemporaryDirectory() as tmp, bench_database() as url:
        broker = RedisServer(log_path=Path(tmp) / "redis.log")
        with broker:
            create_schema(url)
            engine = sa.create_engine(url)
            with (
                producer_runtime(url, broker.url, MACHINES),
                WorkerFleet(
                    database_url=url,
                    broker_url=broker.url,
                    log_dir=Path(tmp),
                    concurrency=args.concurrency,
                    pool=args.pool,
                    machines=MACHINES,
                    app=None,
                ) as fleet,
            ):
                fleet.start_all(args.workers)
                worker_pids = lambda: [p.pid for p in fleet.procs.values()]  # noqa: E731
                assert broker.proc is not None
                cpu = CpuMeter(worker_pids, broker.proc.pid)
                with RssSampler(worker_pids) as rss:
                    from pystator.worker import submit_event_sync

                    for n in range(args.workers * 8):  # the workers are up and warm
                        submit_event_sync(MACHINE, f"warm-{n}", "next", db_url=url)
                    wait_until(lambda: pending_count(engine) == 0, timeout=60)
                    cpu.start()
                    time.sleep(IDLE_SECONDS)
                    report.idle_cpu_ms = cpu.per_second_ms(IDLE_SECONDS)
                    for n in range(DRAIN_ROUNDS):
                        truncate(engine)
                        report.drains.append(measure_drain(engine, url, prefix=f"drain{n}"))
                    for rate in args.rates:
                        truncate(engine)
                        report.open_loop.append(open_loop(engine, url, rate, args.duration, cpu))
                    truncate(engine)
                    report.burst_events = args.burst
                    report.burst_seconds, samples = burst_then_probe(
                        engine, url, args.burst, args.probes
                    )
                    report.probe_first = samples[0]
                    report.probe_p50 = percentile(samples, 50)
                    report.probe_p99 = percentile(samples, 99)
                    report.probe_max = max(samples)
                report.peak_rss_mb = dict(rss.peaks)
                fleet.stop_all()
            engine.dispose()
    return report


def run_mode(args: argparse.Namespace) -> None:
    """The cold-start or scale-out mode, on a fleet of its own (bench/fleet_cold.py)."""
    with tempfile.TemporaryDirectory() as tmp, bench_database() as url:
        broker = RedisServer(log_path=Path(tmp) / "redis.log")
        with broker:
            create_schema(url)
            engine = sa.create_engine(url)
            client = redis.Redis.from_url(broker.url)
            with (
                producer_runtime(url, broker.url, MACHINES) as runtime,
                WorkerFleet(
                    database_url=url,
                    broker_url=broker.url,
                    log_dir=Path(tmp),
                    concurrency=args.concurrency,
                    pool=args.pool,
                    machines=MACHINES,
                    app=None,
                ) as fleet,
            ):
                if args.mode == "cold":
                    report = fleet_cold.cold_start(
                        engine,
                        url,
                        fleet,
                        client,
                        runtime,
                        workers=args.workers,
                        backlog=args.burst,
                        probes=args.probes,
                        warm_burst=burst_then_probe,
                    )
                    fleet_cold.print_cold(report)
                else:
                    rate = args.rates[0] if args.rates != DEFAULT_RATES else SCALE_OUT_RATE
                    scaled = fleet_cold.scale_out(
                        engine, url, fleet, rate=rate, duration=2 * SCALE_OUT_AT, add=2
                    )
                    fleet_cold.print_scale(scaled)
            client.close()
            engine.dispose()


def print_report(report: Report) -> None:
    print(
        f"\nlatency: {report.workers} workers x --concurrency {report.concurrency}, "
        "PostgreSQL + Redis broker"
    )
    if report.drains:
        rounds = ", ".join(f"{d:,.0f}" for d in report.drains)
        print(
            f"\ndrain 1,000 x 5: median {statistics.median(report.drains):,.0f} events/s ({rounds})"
        )
    print("\n| open loop (events/s) | achieved | p50 ms | p99 ms | max ms |")
    print("|---:|---:|---:|---:|---:|")
    for row in report.open_loop:
        print(
            f"| {row.rate:,} | {row.achieved:,.0f} | {row.p50:.1f} | {row.p99:.1f} | {row.max:.1f} |"
        )
    parts = list(report.open_loop[0].cpu_ms) if report.open_loop else []
    if parts:
        print("\n| CPU ms per event | " + " | ".join(parts) + " | total |")
        print("|---:|" + "---:|" * (len(parts) + 1))
        for row in report.open_loop:
            cells = " | ".join(f"{row.cpu_ms[p]:.2f}" for p in parts)
            print(f"| {row.rate:,}/s | {cells} | {sum(row.cpu_ms.values()):.2f} |")
        idle = ", ".join(f"{name} {ms:.0f}" for name, ms in report.idle_cpu_ms.items())
        print(
            f"(includes the fleet's fixed cost: idle, it spends CPU ms per second: {idle}; "
            "producers: this process)"
        )
    crossing = next((r.rate for r in report.open_loop if r.p99 > 100), None)
    print(
        "p99 crosses 100 ms at: "
        + (f"{crossing:,} events/s" if crossing else "none of the rates measured")
    )
    rate = report.burst_events / report.burst_seconds if report.burst_seconds else 0.0
    print(
        f"\nafter a burst of {report.burst_events:,} events ({rate:,.0f}/s submitted and drained): "
        f"probe p50 {report.probe_p50:.1f} ms, p99 {report.probe_p99:.1f} ms, "
        f"max {report.probe_max:.1f} ms, first {report.probe_first:.1f} ms"
    )
    peaks = sorted(round(v) for v in report.peak_rss_mb.values())
    print(f"peak worker RSS (MB): {peaks}")


DEFAULT_RATES = [250, 500, 1000]
#: Scale-out: open-loop rate on one worker, and when two more are added (seconds).
SCALE_OUT_RATE = 500
SCALE_OUT_AT = 10.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of this benchmark (``bench/fleet.py --latency`` takes them too)."""
    parser.add_argument("--rates", type=int, nargs="+", default=DEFAULT_RATES)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per open-loop rate")
    parser.add_argument("--burst", type=int, default=10_000)
    parser.add_argument("--probes", type=int, default=100)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--pool", default="threads", choices=["threads", "prefork", "solo"])
    parser.add_argument("--mode", choices=("warm", "cold", "scale-out"), default="warm")
    add_arguments(parser)
    args = parser.parse_args(argv)
    if args.mode == "warm":
        print_report(run(args))
    else:
        run_mode(args)
    return 0


#: The record each mode is saved under (bench/report.py).
RECORDS = {"warm": "fleet_latency", "cold": "fleet_cold", "scale-out": "fleet_scale_out"}


def record_name(argv: list[str]) -> str:
    """The benchmark record of the mode ``argv`` asks for."""
    mode = "warm"
    for n, arg in enumerate(argv):
        if arg == "--mode" and n + 1 < len(argv):
            mode = argv[n + 1]
        elif arg.startswith("--mode="):
            mode = arg.split("=", 1)[1]
    return RECORDS.get(mode, "fleet_latency")


if __name__ == "__main__":
    # (not ``as run``: that would shadow run() above, which main() calls)
    with report.recorded(record_name(sys.argv[1:])) as record:
        record.exit_code = main()
    sys.exit(record.exit_code)
