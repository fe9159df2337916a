"""Timer benchmark: firing lateness and worker memory for the db, redis and celery schedulers.

    .venv/bin/python bench/timers.py [--quick] [--timers 10000] [--pending 100000]

For each scheduler it starts a fleet of ``pystator worker`` processes (2 x ``--concurrency 4
--pool threads``) on a throwaway PostgreSQL database and measures:

1. **Firing lateness** of ``--timers`` timers due within about ten seconds: ``start`` events are
   submitted paced over ``--submit-seconds`` against ``bench_timer`` (``after: "12s"``, so every timer is
   armed before the first is due: the window measures firing, not a backlog of starts). Lateness
   is read from the database: the timer transition's ``transition_history.created_at`` (apply
   time) minus its event's ``worker_events.fires_at`` (due time), joined by event id. The
   ``fired`` columns split off the first part: ``worker_events.created_at - fires_at`` (the due
   timer noticed and turned into an event).
2. **Worker memory**: total RSS (``/proc/<pid>/status`` VmRSS of every process in each worker's
   process group) with no timer pending, then with ``--pending`` timers pending, due in an hour
   (``bench_timer_far``).
3. **After a SIGKILL** (``--sigkill-only`` runs just this): for each scheduler and broker
   (db, redis, celery on Redis and on RabbitMQ), 900 timers with one of the two workers
   SIGKILLed 0.5 s before the first is due and restarted; the worst lateness shows how fast the
   timers the dead worker held come back (its death is noticed at once; the recovery sweep is
   at 10 s for this run).

Peers measured in the same run: plain Celery ETA tasks (no pystator: a task sent with ``eta=``
to 2 Celery worker processes of the same pool and concurrency on the same broker; lateness =
task start - eta), and the in-process :class:`pystator.schedulers.AsyncioScheduler`. The db and
redis fleets carry their nudges over a private ``redis-server``, the celery fleet over RabbitMQ
(a queue of its own, deleted afterwards); each is compared with the Celery ETA peer on its own
broker. Numbers are printed, never asserted. Everything started is stopped and the databases
are dropped, also on Ctrl-C or an error.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import report  # bench/report.py: every run is saved as JSON
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.fleet import bench_database, percentile  # noqa: E402
from tests.support.fleet_database import create_schema  # noqa: E402
from tests.support.fleet_processes import RedisServer, WorkerFleet  # noqa: E402
from tests.support.waiting import wait_until  # noqa: E402

MACHINES = ROOT / "bench" / "machines"
LATE_MACHINE = "bench_timer"  # after: "12s"
FAR_MACHINE = "bench_timer_far"  # after: "1h"
AFTER_SECONDS = 12.0  # the `after:` of bench_timer (the Celery peer uses the same delay)
SCHEDULERS = ("db", "redis", "celery")
AMQP_URL = os.environ.get("PYSTATOR_BENCH_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")

WORKERS = 2
CONCURRENCY = 4
POOL = "threads"
PACE_BATCH = 50  # events per paced submission (or ETA tasks per paced send)
PENDING_BATCH = 5000  # events per submission while arming the pending timers
READY_TIMEOUT_SECONDS = 60.0
APPLY_TIMEOUT_SECONDS = 600.0
#: After the last pending timer is armed, let the workers settle before reading RSS.
SETTLE_SECONDS = 3.0
RECOVERY_SECONDS = 10.0  # the fleet's default PYSTATOR_TIMER_RECOVERY_SECONDS, set explicitly
FULL = {"timers": 10_000, "pending": 100_000, "submit_seconds": 10.0}
QUICK = {"timers": 1_000, "pending": 10_000, "submit_seconds": 4.0}

TARGET_P99_MS = 100.0  # redis and db
#: Memory counts as "not growing" when the pending timers add less than this per worker.
MEMORY_SLACK_MB = 10.0

PEER_TASK = "bench.eta_probe"
#: The hand-rolled Celery peer: a worker whose only task returns its start time minus its ETA.
PEER_WORKER_SOURCE = """
import os, sys, time
from celery import Celery

app = Celery(
    "bench_eta_peer",
    broker=os.environ["BENCH_PEER_BROKER"],
    backend=os.environ["BENCH_PEER_BACKEND"],
)
app.conf.update(
    task_default_queue=os.environ["BENCH_PEER_QUEUE"],
    worker_hijack_root_logger=False,
    broker_connection_retry_on_startup=True,
    result_expires=3600,
)


@app.task(name="bench.eta_probe")
def eta_probe(eta: float) -> float:
    return time.time() - eta


app.worker_main(sys.argv[1:])
"""


# ---------------------------------------------------------------------------- measurements


@dataclass
class Lateness:
    """Lateness percentiles (ms) of one run; ``fired_*``: the due timer turned into an event."""

    count: int = 0
    p50: float = math.nan
    p95: float = math.nan
    p99: float = math.nan
    max: float = math.nan
    fired_p50: float = math.nan
    fired_p99: float = math.nan
    due_spread_s: float = math.nan  # last due time - first due time

    @classmethod
    def of(
        cls, samples_ms: Sequence[float], fired_ms: Sequence[float] = (), spread: float = math.nan
    ) -> Lateness:
        ordered = sorted(samples_ms)
        fired = sorted(fired_ms)
        return cls(
            count=len(ordered),
            p50=percentile(ordered, 50),
            p95=percentile(ordered, 95),
            p99=percentile(ordered, 99),
            max=ordered[-1] if ordered else math.nan,
            fired_p50=percentile(fired, 50) if fired else math.nan,
            fired_p99=percentile(fired, 99) if fired else math.nan,
            due_spread_s=spread,
        )


@dataclass
class Memory:
    """Total worker RSS (MB) idle and with ``pending`` timers pending, and where those wait."""

    pending: int = 0
    held_half: int = -1  # timers actually pending at the half-way reading (-1: pending // 2)
    held_all: int = -1  # ... and at the final reading (-1: all of ``pending``)
    started_mb: float = math.nan  # right after start-up and a probe
    idle_mb: float = math.nan  # after the lateness run, nothing pending
    half_mb: float = math.nan  # with half of them pending
    pending_mb: float = math.nan
    held_by: str = ""  # where the pending timers are kept
    store_mb: float = math.nan  # size of that store's share (table, Redis, or workers)

    @property
    def growth_mb(self) -> float:
        return self.pending_mb - self.idle_mb

    @property
    def marginal_kb_per_1k(self) -> float:
        """RSS added per 1,000 timers by the second half (the first half also warms up)."""
        second = self.held - (self.pending // 2 if self.held_half < 0 else self.held_half)
        return (self.pending_mb - self.half_mb) * 1024 * 1000 / second if second else math.nan

    @property
    def held(self) -> int:
        return self.pending if self.held_all < 0 else self.held_all


@dataclass
class Row:
    """One scheduler (or peer) of the report."""

    name: str
    broker: str
    lateness: Lateness = field(default_factory=Lateness)
    memory: Memory | None = None
    peer: str = ""  # the name of the row its p99 is compared with
    notes: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------- process memory


def _rss_kb(pid: int) -> int:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return 0
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0  # a zombie has no VmRSS line


def _process_group(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return int(stat.rsplit(")", 1)[1].split()[2])  # fields after "(comm)": state ppid pgrp


def group_rss_mb(pgids: Sequence[int]) -> float:
    """Total RSS (MB) of every process in the process groups ``pgids`` (leaders + children)."""
    wanted = set(pgids)
    total_kb = 0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and _process_group(int(entry.name)) in wanted:
            total_kb += _rss_kb(int(entry.name))
    return total_kb / 1024


def settled_rss_mb(pgids: Sequence[int], seconds: float = SETTLE_SECONDS) -> float:
    """RSS once the workers have had ``seconds`` to finish what they were doing."""
    time.sleep(seconds)  # the point is to read memory at rest
    return group_rss_mb(pgids)


# ---------------------------------------------------------------------------- pystator fleet


@contextlib.contextmanager
def producer(url: str, broker_url: str, queue: str) -> Iterator[Any]:
    """A runtime submitting to ``url`` and nudging ``queue`` on ``broker_url``."""
    from pystator.config.settings import load_settings
    from pystator.fleet.runtime import Runtime

    settings = replace(
        load_settings(),
        database_url=url,
        broker_url=broker_url,
        machines=str(MACHINES),
        app=None,
        queue=queue,
        scheduler="db",  # the producer only submits; the workers' scheduler fires the timers
    )
    runtime = Runtime.from_settings(settings)
    try:
        yield runtime.producer
    finally:
        flush = getattr(runtime.nudger, "flush", None)
        if flush is not None:
            flush()
        runtime.close()


def scalar(engine: sa.Engine, sql: str, **params: Any) -> Any:
    with engine.connect() as conn:
        return conn.execute(sa.text(sql), params).scalar_one()


def submit_paced(
    submit: Callable[[list[Any]], object], items: Sequence[Any], seconds: float, batch: int
) -> float:
    """Submit ``items`` in batches spread evenly over ``seconds``; returns the time it took."""
    chunks = max(1, math.ceil(len(items) / batch))
    start = time.monotonic()
    for n in range(chunks):
        delay = start + seconds * n / chunks - time.monotonic()
        if delay > 0:
            time.sleep(delay)  # pacing the producer is the point here
        submit(list(items[n * batch : (n + 1) * batch]))
    return time.monotonic() - start


def wait_ready(
    engine: sa.Engine, submit: Callable[[list[Any]], object], fleet: WorkerFleet
) -> None:
    """The fleet is up once probe events (one per worker thread) are applied."""
    from pystator.fleet.producer import EventSpec

    probes = WORKERS * CONCURRENCY
    submit(
        [
            EventSpec(machine=FAR_MACHINE, entity_id=f"probe-{n}", trigger="start")
            for n in range(probes)
        ]
    )
    try:
        wait_until(
            lambda: (
                scalar(engine, "SELECT count(*) FROM worker_events WHERE status = 'pending'") == 0
            ),
            timeout=READY_TIMEOUT_SECONDS,
            interval=0.1,
            message="workers ready",
        )
    except TimeoutError as exc:
        raise RuntimeError(f"{exc}\n{fleet.log_tail()}") from exc


LATENESS_SQL = """
SELECT extract(epoch FROM h.created_at - e.fires_at) * 1000 AS applied_ms,
       extract(epoch FROM e.created_at - e.fires_at) * 1000 AS fired_ms,
       extract(epoch FROM e.fires_at) AS due
FROM transition_history h JOIN worker_events e ON e.id = h.event_id
WHERE e.origin = 'timer' AND h.origin = 'timer' AND e.machine = :m
"""


def measure_fleet_lateness(
    engine: sa.Engine, submit: Callable[[list[Any]], object], args: argparse.Namespace
) -> Lateness:
    """Submit ``args.timers`` starts paced, wait for every timer transition, read the lateness."""
    from pystator.fleet.producer import EventSpec

    specs = [
        EventSpec(machine=LATE_MACHINE, entity_id=f"late-{n:06d}", trigger="start")
        for n in range(args.timers)
    ]
    submit_paced(submit, specs, args.submit_seconds, PACE_BATCH)
    count_sql = "SELECT count(*) FROM transition_history WHERE origin = 'timer' AND machine = :m"
    wait_until(
        lambda: scalar(engine, count_sql, m=LATE_MACHINE) >= args.timers,
        timeout=APPLY_TIMEOUT_SECONDS,
        interval=0.2,
        message=f"{args.timers} timer transitions applied",
    )
    with engine.connect() as conn:
        rows = conn.execute(sa.text(LATENESS_SQL), {"m": LATE_MACHINE}).all()
    dues = [float(r.due) for r in rows]
    return Lateness.of(
        [float(r.applied_ms) for r in rows],
        [float(r.fired_ms) for r in rows],
        max(dues) - min(dues) if dues else math.nan,
    )


def arm_pending(
    engine: sa.Engine,
    submit: Callable[[list[Any]], object],
    span: tuple[int, int],
    fleet: WorkerFleet,
) -> None:
    """Enter entities ``span`` (first, end) into the 1h-timer state; wait until all are armed."""
    from pystator.fleet.producer import EventSpec

    first, pending = span
    for start in range(first, pending, PENDING_BATCH):
        submit(
            [
                EventSpec(machine=FAR_MACHINE, entity_id=f"far-{n:07d}", trigger="start")
                for n in range(start, min(start + PENDING_BATCH, pending))
            ]
        )
    armed_sql = "SELECT count(*) FROM worker_timers WHERE machine = :m AND entity_id LIKE 'far-%'"
    try:
        wait_until(
            lambda: scalar(engine, armed_sql, m=FAR_MACHINE) >= pending,
            timeout=APPLY_TIMEOUT_SECONDS,
            interval=0.5,
            message=f"{pending} far timers armed",
        )
    except TimeoutError as exc:
        raise RuntimeError(f"{exc}\n{fleet.log_tail()}") from exc


def redis_used_mb(url: str) -> float:
    import redis

    client = redis.Redis.from_url(url)
    try:
        return float(client.info("memory")["used_memory"]) / 2**20
    finally:
        client.close()


def measure_scheduler(
    scheduler: str, args: argparse.Namespace, private_redis: RedisServer, logs: Path
) -> Row:
    """Lateness and memory of a 2-worker fleet using ``scheduler``."""
    broker = AMQP_URL if scheduler == "celery" else private_redis.url
    queue = f"bench-timers-{uuid.uuid4().hex[:8]}"
    env = {
        "PYSTATOR_SCHEDULER": scheduler,
        "PYSTATOR_QUEUE": queue,
        "PYSTATOR_TIMER_RECOVERY_SECONDS": str(RECOVERY_SECONDS),
    }
    if scheduler == "redis":
        env["PYSTATOR_REDIS_URL"] = private_redis.url
    row = Row(name=f"pystator {scheduler}", broker=_broker_name(broker))
    with contextlib.ExitStack() as stack:
        if broker == AMQP_URL:
            stack.callback(delete_amqp_queue, queue)
        url = stack.enter_context(bench_database())
        create_schema(url)
        engine = sa.create_engine(url)
        stack.callback(engine.dispose)
        submit = stack.enter_context(producer(url, broker, queue)).submit_many
        fleet = stack.enter_context(
            WorkerFleet(
                database_url=url,
                broker_url=broker,
                log_dir=logs / scheduler,
                concurrency=CONCURRENCY,
                pool=POOL,
                machines=MACHINES,
                app=None,
                extra_env=env,
            )
        )
        fleet.log_dir.mkdir(parents=True, exist_ok=True)
        fleet.start_all(WORKERS)
        wait_ready(engine, submit, fleet)
        pgids = [p.pid for p in fleet.procs.values()]
        memory = Memory(pending=args.pending, started_mb=settled_rss_mb(pgids))
        row.lateness = measure_fleet_lateness(engine, submit, args)
        memory.idle_mb = settled_rss_mb(pgids)
        redis_before = redis_used_mb(private_redis.url)
        half = args.pending // 2
        arm_pending(engine, submit, (0, half), fleet)
        memory.half_mb = settled_rss_mb(pgids)
        arm_pending(engine, submit, (half, args.pending), fleet)
        memory.pending_mb = settled_rss_mb(pgids)
        table_mb = scalar(engine, "SELECT pg_total_relation_size('worker_timers')") / 2**20
        if scheduler == "redis":
            memory.held_by = "Redis + table"
            memory.store_mb = redis_used_mb(private_redis.url) - redis_before
            row.notes.append(f"worker_timers table with the pending timers: {table_mb:.1f} MB")
        else:
            memory.held_by = "table"
            memory.store_mb = table_mb
        if scheduler == "celery":
            handed = scalar(
                engine, "SELECT count(*) FROM worker_timers WHERE handed_at IS NOT NULL"
            )
            row.notes.append(f"far timers handed to Celery (beyond the horizon): {handed}")
        row.memory = memory
        recovered = _log_count(fleet.log_dir, "timers_recovered")
        if recovered:
            row.notes.append(f"{recovered} recovery sweeps fired timers (hand-off lost)")
        if fleet.exited():
            row.notes.append(f"workers exited: {fleet.exited()}")
        fleet.stop_all()
    return row


def _log_count(log_dir: Path, needle: str) -> int:
    return sum(p.read_text(errors="replace").count(needle) for p in log_dir.glob("worker-*.log"))


def _broker_name(url: str) -> str:
    return "RabbitMQ" if url.startswith("amqp") else "Redis"


def delete_amqp_queue(queue: str) -> None:
    """Delete a queue this bench declared on the shared RabbitMQ (no-op when it does not exist)."""
    from kombu import connection as kombu_connection

    connect: Any = kombu_connection.Connection  # kombu ships no type hints
    connection = connect(AMQP_URL, connect_timeout=5)
    with connection as conn, contextlib.suppress(Exception):
        conn.default_channel.queue_delete(queue)


# ---------------------------------------------------------------------------- Celery ETA peer


@dataclass
class PeerWorkers:
    """Plain Celery workers (``PEER_WORKER_SOURCE``), each in its own process group."""

    broker: str
    backend: str
    queue: str
    log_dir: Path
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start(self) -> None:
        env = dict(
            os.environ,
            BENCH_PEER_BROKER=self.broker,
            BENCH_PEER_BACKEND=self.backend,
            BENCH_PEER_QUEUE=self.queue,
        )
        for slot in range(WORKERS):
            args = [sys.executable, "-c", PEER_WORKER_SOURCE, "worker"]
            args += ["--pool", POOL, "--concurrency", str(CONCURRENCY), "-Q", self.queue]
            args += ["--hostname", f"peer{slot}-{self.queue}@%h", "--loglevel", "WARNING"]
            with (self.log_dir / f"peer-{slot}.log").open("wb") as log:
                proc = subprocess.Popen(
                    args, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
                )
            self.procs.append(proc)

    @property
    def pgids(self) -> list[int]:
        return [p.pid for p in self.procs]

    def stop(self) -> None:
        for proc in self.procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        self.procs.clear()

    def __enter__(self) -> PeerWorkers:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()


def queue_depth(app: Any, queue: str) -> int:
    """Messages waiting in ``queue`` on the broker (not yet delivered to a worker)."""
    with app.connection_for_write() as conn:
        try:
            return int(conn.default_channel.queue_declare(queue, passive=True).message_count)
        except conn.channel_errors:  # Redis: an empty list is no key, hence "no queue"
            return 0


def wait_taken(app: Any, queue: str, seconds: float) -> int:
    """Wait until the workers took every queued task, or ``seconds``; returns those left."""
    deadline = time.monotonic() + seconds
    while (left := queue_depth(app, queue)) and time.monotonic() < deadline:
        time.sleep(0.5)
    return left


def measure_celery_peer(
    broker: str, backend: str, args: argparse.Namespace, logs: Path, with_memory: bool
) -> Row:
    """Lateness (and memory) of 2 plain Celery workers running no-op tasks sent with ``eta=``."""
    from celery import Celery
    from celery.result import ResultSet

    queue = f"bench-eta-peer-{uuid.uuid4().hex[:8]}"
    row = Row(name="Celery ETA (no pystator)", broker=_broker_name(broker))
    app = Celery("bench_eta_sender", broker=broker, backend=backend, set_as_current=False)
    app.conf.update(task_default_queue=queue, broker_connection_retry_on_startup=True)
    peer_logs = logs / f"peer-{row.broker}"
    peer_logs.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        if broker == AMQP_URL:
            stack.callback(delete_amqp_queue, queue)
        stack.callback(app.close)
        workers = stack.enter_context(PeerWorkers(broker, backend, queue, peer_logs))
        workers.start()
        wait_until(
            lambda: len(app.control.ping(timeout=0.5)) >= WORKERS,
            timeout=READY_TIMEOUT_SECONDS,
            interval=0.2,
            message="Celery peer workers ready",
        )
        memory = Memory(pending=args.pending, started_mb=settled_rss_mb(workers.pgids))

        results = []
        etas: list[float] = []

        def send(batch: list[int]) -> None:
            with app.producer_or_acquire() as producer:
                for _ in batch:
                    eta = datetime.now(UTC) + timedelta(seconds=AFTER_SECONDS)
                    etas.append(eta.timestamp())
                    results.append(
                        app.send_task(PEER_TASK, args=[eta.timestamp()], eta=eta, producer=producer)
                    )

        submit_paced(send, range(args.timers), args.submit_seconds, PACE_BATCH)
        late_s = ResultSet(results).join_native(timeout=APPLY_TIMEOUT_SECONDS)
        row.lateness = Lateness.of([float(s) * 1000 for s in late_s], spread=max(etas) - min(etas))
        if with_memory:
            memory.idle_mb = settled_rss_mb(workers.pgids)
            far = datetime.now(UTC) + timedelta(hours=1)
            sent = 0
            for step in (args.pending // 2, args.pending - args.pending // 2):
                sent += step
                with app.producer_or_acquire() as producer:
                    for _ in range(step):
                        app.send_task(
                            PEER_TASK,
                            args=[far.timestamp()],
                            eta=far,
                            producer=producer,
                            ignore_result=True,
                        )
                held = sent - wait_taken(app, queue, args.peer_take_seconds)
                memory.half_mb, memory.pending_mb = (
                    memory.pending_mb,
                    settled_rss_mb(workers.pgids),
                )
                memory.held_half, memory.held_all = memory.held_all, held
            if memory.held < args.pending:
                row.notes.append(
                    f"the workers had taken only {memory.held:,} of {args.pending:,} ETA tasks "
                    f"after {args.peer_take_seconds:.0f}s (the rest still queued in the broker)"
                )
            memory.held_by = "workers"
            memory.store_mb = memory.growth_mb
            row.memory = memory
    return row


# ---------------------------------------------------------------------------- asyncio baseline


def measure_asyncio(args: argparse.Namespace) -> Row:
    """The in-process AsyncioScheduler firing ``args.timers`` timers due over the same window."""
    from pystator.fsm_core.records import ArmedTimer
    from pystator.schedulers import AsyncioScheduler

    row = Row(name="AsyncioScheduler (in-process)", broker="-")
    late_ms: list[float] = []
    dues: list[float] = []
    done = threading.Event()

    def fire(timer: ArmedTimer) -> None:
        assert timer.due_at is not None
        late_ms.append((datetime.now(UTC) - timer.due_at).total_seconds() * 1000)
        if len(late_ms) >= args.timers:
            done.set()

    scheduler = AsyncioScheduler()
    scheduler.start(fire)
    try:

        def arm(batch: list[int]) -> None:
            due = datetime.now(UTC) + timedelta(seconds=AFTER_SECONDS)
            dues.append(due.timestamp())
            scheduler.arm(
                [
                    ArmedTimer(
                        machine=LATE_MACHINE,
                        entity_id=f"late-{n}",
                        key="expire",
                        state="waiting",
                        entry=1,
                        trigger="expire",
                        due_at=due,
                    )
                    for n in batch
                ]
            )

        submit_paced(arm, range(args.timers), args.submit_seconds, PACE_BATCH)
        if not done.wait(APPLY_TIMEOUT_SECONDS):
            row.notes.append(f"only {len(late_ms)} of {args.timers} timers fired")
    finally:
        asyncio.run(scheduler.aclose())
    row.lateness = Lateness.of(late_ms, spread=max(dues) - min(dues) if dues else math.nan)
    return row


# ---------------------------------------------------------------------------- report


def render(headers: Sequence[str], rows: Sequence[Sequence[str]], numeric_from: int = 1) -> str:
    """A Markdown table padded so that it also reads aligned as plain text."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        padded = [
            c.rjust(w) if i >= numeric_from else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "| " + " | ".join(padded) + " |"

    rule = [
        "-" * (w + 1) + ":" if i >= numeric_from else "-" * (w + 2) for i, w in enumerate(widths)
    ]
    return "\n".join([line(headers), "|" + "|".join(rule) + "|", *(map(line, rows))])


def _ms(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:,.1f}"


def _mb(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:,.1f}"


def print_report(rows: list[Row], args: argparse.Namespace) -> None:
    by_name = {(r.name, r.broker): r for r in rows}
    print(
        f"\ntimers: {args.timers:,} `start` events paced over {args.submit_seconds:.0f}s, each "
        f"arming an `after: {AFTER_SECONDS:.0f}s` timer; {WORKERS} workers x "
        f"`--concurrency {CONCURRENCY} --pool {POOL}` ({os.cpu_count()} CPUs, PostgreSQL and "
        "brokers on the same machine)"
    )
    print(
        "lateness = transition applied (transition_history.created_at) - due "
        "(worker_events.fires_at); `fired` = timer turned into an event - due. Peers: task start "
        "- eta / callback start - due.\n"
    )
    table = []
    for r in rows:
        lat = r.lateness
        ref = by_name.get(("Celery ETA (no pystator)", r.peer))
        ratio = "-"
        if ref is not None and ref is not r and ref.lateness.p99 > 0:
            ratio = f"{lat.p99 / ref.lateness.p99:.2f}x"
        table.append(
            [
                r.name,
                r.broker,
                f"{lat.count:,}",
                "-" if math.isnan(lat.due_spread_s) else f"{lat.due_spread_s:.1f} s",
                _ms(lat.fired_p50),
                _ms(lat.fired_p99),
                _ms(lat.p50),
                _ms(lat.p95),
                _ms(lat.p99),
                _ms(lat.max),
                ratio,
            ]
        )
    print(
        render(
            [
                "scheduler",
                "broker",
                "timers",
                "due over",
                "fired p50",
                "fired p99",
                "p50 ms",
                "p95 ms",
                "p99 ms",
                "max ms",
                "p99 ÷ Celery ETA (same broker)",
            ],
            table,
            numeric_from=2,
        )
    )
    print(f"target: p99 ≤ {TARGET_P99_MS:.0f} ms for redis and db")
    for r in rows:
        if r.name in ("pystator db", "pystator redis"):
            ok = r.lateness.p99 <= TARGET_P99_MS
            print(f"  {r.name}: p99 {r.lateness.p99:,.1f} ms → {'ok' if ok else 'MISSED'}")

    mem_rows = [r for r in rows if r.memory is not None]
    if not mem_rows:
        return
    print(
        f"\nworker memory: total RSS of the {WORKERS} worker process groups; pending timers are "
        "due in 1 hour. idle = after the lateness run; growth = all pending - idle; the last "
        "column is the growth of the second half only (the first half also warms the allocator "
        "up on the events that arm them). Peers: the Celery ETA workers with as many ETA "
        "tasks due in 1 hour (default worker flags: with heartbeat, see note).\n"
    )
    mem_table = []
    for r in mem_rows:
        m = r.memory
        assert m is not None
        mem_table.append(
            [
                r.name,
                r.broker,
                _mb(m.started_mb),
                _mb(m.idle_mb),
                f"{m.held:,}" if m.held == m.pending else f"{m.held:,} of {m.pending:,}",
                _mb(m.half_mb),
                _mb(m.pending_mb),
                f"{m.growth_mb:+,.1f}",
                f"{m.marginal_kb_per_1k:+,.1f}",
                m.held_by,
                _mb(m.store_mb),
            ]
        )
    print(
        render(
            [
                "scheduler",
                "broker",
                "RSS started MB",
                "RSS idle MB",
                "pending timers",
                "RSS half pending MB",
                "RSS all pending MB",
                "growth MB",
                "2nd half KB per 1k",
                "timers held by",
                "their size MB",
            ],
            mem_table,
            numeric_from=2,
        )
    )
    print(
        f"target: worker memory does not grow with pending timers (growth < "
        f"{MEMORY_SLACK_MB:.0f} MB per worker)"
    )
    for r in mem_rows:
        m = r.memory
        assert m is not None
        if r.name.startswith("pystator"):
            ok = m.growth_mb < MEMORY_SLACK_MB * WORKERS
            print(f"  {r.name}: {m.growth_mb:+,.1f} MB → {'ok' if ok else 'MISSED'}")
    for r in rows:
        for note in r.notes:
            print(f"note ({r.name}, {r.broker}): {note}")


# ---------------------------------------------------------------------------- main


# ---------------------------------------------------------------------------- SIGKILL

KILL_RECOVERY_SECONDS = 10.0
KILL_BEFORE_DUE_SECONDS = 0.5
CASES = (("db", "redis"), ("redis", "redis"), ("celery", "redis"), ("celery", "amqp"))


@dataclass
class KillResult:
    """Worst lateness of one scheduler/broker pair after the kill."""

    scheduler: str
    broker: str
    timers: int = 0
    fired_max_ms: float = 0.0
    applied_max_ms: float = 0.0
    late_over_2s: int = 0
    death_recoveries: int = 0
    sweep_recoveries: int = 0


def measure_kill(scheduler: str, broker: str, entities: int, redis: RedisServer) -> KillResult:
    result = KillResult(scheduler=scheduler, broker=broker)
    broker_url = AMQP_URL if broker == "amqp" else redis.url
    queue = f"bench-kill-{uuid.uuid4().hex[:8]}"
    env = {
        "PYSTATOR_SCHEDULER": scheduler,
        "PYSTATOR_QUEUE": queue,
        "PYSTATOR_TIMER_RECOVERY_SECONDS": str(KILL_RECOVERY_SECONDS),
        "PYSTATOR_LOG_FORMAT": "json",
    }
    if scheduler == "redis":
        env["PYSTATOR_REDIS_URL"] = redis.url
    with contextlib.ExitStack() as stack, tempfile.TemporaryDirectory() as logs:
        if broker == "amqp":
            stack.callback(delete_amqp_queue, queue)
        url = stack.enter_context(bench_database())
        create_schema(url)
        engine = sa.create_engine(url)
        stack.callback(engine.dispose)
        submit = stack.enter_context(producer(url, broker_url, queue)).submit_many
        fleet = stack.enter_context(
            WorkerFleet(
                database_url=url,
                broker_url=broker_url,
                log_dir=Path(logs),
                concurrency=CONCURRENCY,
                pool=POOL,
                machines=MACHINES,
                app=None,
                extra_env=env,
            )
        )
        fleet.start_all(WORKERS)
        from pystator.fleet.producer import EventSpec

        submit([EventSpec(machine=LATE_MACHINE, entity_id="ready", trigger="start")])
        wait_until(lambda: _armed(engine) == 1, timeout=60, message="workers ready")
        started = time.monotonic()
        submit(
            [
                EventSpec(machine=LATE_MACHINE, entity_id=f"k-{n:05d}", trigger="start")
                for n in range(entities)
            ]
        )
        time.sleep(max(0.0, started + AFTER_SECONDS - KILL_BEFORE_DUE_SECONDS - time.monotonic()))
        fleet.kill(0)  # SIGKILL: whatever it held in memory or under lease dies with it
        fleet.start(0)
        total = entities + 1
        wait_until(
            lambda: _fired(engine) >= total, timeout=120, interval=0.2, message="every timer"
        )
        rows = _lateness(engine)
        result.timers = len(rows)
        result.fired_max_ms = max(r[0] for r in rows)
        result.applied_max_ms = max(r[1] for r in rows)
        result.late_over_2s = sum(1 for r in rows if r[1] > 2000)
        result.death_recoveries = _log_count(Path(logs), '"timers_recovered_after_worker_death"')
        result.sweep_recoveries = _log_count(Path(logs), '"timers_recovered"')
        fleet.stop_all()
    return result


def _armed(engine: sa.Engine) -> int:
    return int(scalar(engine, "SELECT count(*) FROM worker_timers"))


def _fired(engine: sa.Engine) -> int:
    return int(scalar(engine, "SELECT count(*) FROM transition_history WHERE origin = 'timer'"))


def _lateness(engine: sa.Engine) -> list[tuple[float, float]]:
    query = sa.text(
        "SELECT extract(epoch FROM e.created_at - e.fires_at) * 1000, "
        "extract(epoch FROM h.created_at - e.fires_at) * 1000 "
        "FROM transition_history h JOIN worker_events e ON e.id = h.event_id "
        "WHERE e.origin = 'timer'"
    )
    with engine.connect() as conn:
        return [(float(a), float(b)) for a, b in conn.execute(query)]


def run_kills(entities: int) -> list[KillResult]:
    """Every case of :data:`CASES` with a private Redis."""
    with tempfile.TemporaryDirectory() as tmp, RedisServer(log_path=Path(tmp) / "r.log") as rs:
        return [measure_kill(s, b, entities, rs) for s, b in CASES]


def print_kills(results: list[KillResult]) -> None:
    print(
        f"\nSIGKILL: one of {WORKERS} workers killed {KILL_BEFORE_DUE_SECONDS} s before the "
        f"first `after: {AFTER_SECONDS:.0f}s` timer is due (recovery sweep at "
        f"{KILL_RECOVERY_SECONDS:.0f} s)\n"
    )
    print(
        "| scheduler | broker | timers | worst fired (ms) | worst applied (ms) | "
        "applied > 2 s | recovered after the death | recovered by the sweep |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for r in results:
        print(
            f"| {r.scheduler} | {r.broker} | {r.timers:,} | {r.fired_max_ms:.0f} | "
            f"{r.applied_max_ms:.0f} | {r.late_over_2s} | {r.death_recoveries} | "
            f"{r.sweep_recoveries} |"
        )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"smoke run: {QUICK['timers']:,} timers, {QUICK['pending']:,} pending",
    )
    parser.add_argument("--timers", type=int, default=None, help="timers for the lateness run")
    parser.add_argument("--pending", type=int, default=None, help="pending timers for memory")
    parser.add_argument(
        "--submit-seconds", type=float, default=None, help="spread the starts over this long"
    )
    parser.add_argument("--schedulers", nargs="+", choices=SCHEDULERS, default=list(SCHEDULERS))
    parser.add_argument(
        "--peer-take-seconds",
        type=float,
        default=120.0,
        help="how long the Celery peer workers may take to fetch each half of the pending tasks",
    )
    parser.add_argument("--no-peer", action="store_true", help="skip the Celery ETA peers")
    parser.add_argument("--no-asyncio", action="store_true", help="skip the asyncio baseline")
    parser.add_argument(
        "--sigkill-only", action="store_true", help="only the worker-SIGKILL lateness table"
    )
    parser.add_argument(
        "--kill-entities", type=int, default=900, help="timers of the SIGKILL case (default 900)"
    )
    args = parser.parse_args(argv)
    defaults = QUICK if args.quick else FULL
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    return args


def _terminate(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)  # unwinds the context managers: processes stopped, DBs dropped


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    if args.sigkill_only:
        print_kills(run_kills(args.kill_entities))
        return 0
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp, RedisServer(log_path=Path(tmp) / "redis.log") as rs:
        logs = Path(tmp)
        backend = rs.url.rsplit("/", 1)[0] + "/2"
        peers: dict[str, Row] = {}
        if not args.no_peer:
            for broker in (rs.url.rsplit("/", 1)[0] + "/1", AMQP_URL):
                print(f"Celery ETA peer on {_broker_name(broker)} …", file=sys.stderr)
                peer = measure_celery_peer(broker, backend, args, logs, with_memory=True)
                peers[peer.broker] = peer
        for scheduler in args.schedulers:
            print(f"pystator {scheduler} …", file=sys.stderr)
            row = measure_scheduler(scheduler, args, rs, logs)
            row.peer = row.broker
            rows.append(row)
        if not args.no_asyncio:
            print("AsyncioScheduler …", file=sys.stderr)
            row = measure_asyncio(args)
            row.peer = "Redis"
            rows.append(row)
        for peer in peers.values():
            peer.peer = peer.broker
            rows.append(peer)
    print_report(rows, args)
    print_kills(run_kills(args.kill_entities))
    return 0


if __name__ == "__main__":
    with report.recorded("timers") as run:
        run.exit_code = main()
    sys.exit(run.exit_code)
