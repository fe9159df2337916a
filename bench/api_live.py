"""The live rows of ``bench/api.py``: how far the SSE transition stream trails a fleet that
drains a burst (lag from apply to delivery), and webhook deliveries per second.

**SSE lag.** A fresh database, a private Redis broker, ``--fleet-workers`` ``pystator worker``
processes (``bench/machines/bench_cycle.yaml``: no guards, no actions) and a ``pystator api``.
A client opens ``GET /api/v1/transitions/stream`` and a burst of ``entities x events`` is
submitted at once. For every transition received, lag = the time it arrived at the client minus
its ``at`` (the applying transaction's time on the database clock; client, server and database
share this machine's clock). The drain rate is the burst over the span of the ``at`` stamps.

**Webhook deliveries/s.** ``--webhooks`` deliveries queued in one transaction for a webhook
whose receiver is a local HTTP/1.1 server (keep-alive, a thread per connection); the fleet's
relays send them from the outbox. Rate = the
deliveries over the time from queueing to the last one received. Numbers are printed, never
asserted.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.fleet_setup import MACHINE, MACHINES, bench_database  # noqa: E402
from pystator.fleet.webhooks import TEST, enqueue  # noqa: E402
from pystator.services import webhooks  # noqa: E402
from pystator.services.audit import Actor  # noqa: E402
from pystator.services.webhooks import WebhookSpec  # noqa: E402
from pystator.stores.sql import webhook_queries  # noqa: E402
from pystator.stores.sql.connections import dispose, fleet_engine  # noqa: E402
from pystator.stores.sql.db_clock import read_now  # noqa: E402
from tests.support.fleet_database import create_schema, pending_count  # noqa: E402
from tests.support.fleet_processes import RedisServer, WorkerFleet, producer_runtime  # noqa: E402
from tests.support.ports import free_port  # noqa: E402
from tests.support.waiting import wait_until  # noqa: E402

TIMEOUT_SECONDS = 600.0


@dataclass
class StreamResult:
    """What the SSE lag run measured."""

    events: int
    drain_per_second: float
    lags_ms: list[float] = field(default_factory=list)  # from the applying transaction's start
    commit_lags_ms: list[float] = field(default_factory=list)  # from first visible (commit)
    committed: int = 0  # history rows of the burst in the table at the end
    distinct: int = 0  # distinct ids the stream delivered (== events: no repeats)
    # lag p99 (from apply) of the first and of the last quarter of the burst, in apply order:
    # a stream that keeps up has no lag growing with time
    quarter_p99_ms: tuple[float, float] = (0.0, 0.0)


def _pct(samples: list[float], pct: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * pct))] if ordered else 0.0


@dataclass
class WebhookResult:
    """What the webhook run measured."""

    deliveries: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.deliveries / self.seconds if self.seconds else 0.0


class _Watcher(threading.Thread):
    """Notes when each history row first becomes visible to a plain reader (its commit, give or
    take the poll), to tell the apply's own duration from the stream's delay."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.engine = sa.create_engine(url)
        self.first_seen: dict[int, float] = {}
        self.stop = threading.Event()

    def run(self) -> None:
        floor = 0
        query = sa.text("SELECT id FROM transition_history WHERE id > :floor")
        with self.engine.connect() as conn:
            while not self.stop.is_set():
                ids = conn.execute(query, {"floor": floor}).scalars().all()
                conn.rollback()
                now = time.time()
                for row_id in ids:
                    self.first_seen.setdefault(int(row_id), now)
                if ids:
                    floor = max(floor, max(ids) - 2000)  # a window for late (lower) ids
                self.stop.wait(0.01)
        self.engine.dispose()


class _Reader(threading.Thread):
    """Reads the stream, stamping each transition's arrival."""

    def __init__(self, base: str, wanted: int) -> None:
        super().__init__(daemon=True)
        self.base = base
        self.wanted = wanted
        self.arrivals: list[tuple[float, str, int]] = []
        self.ready = threading.Event()

    def run(self) -> None:
        with (
            httpx.Client(base_url=self.base, timeout=TIMEOUT_SECONDS) as client,
            client.stream("GET", "/api/v1/transitions/stream") as response,
        ):
            for line in response.iter_lines():
                self.ready.set()
                if line.startswith("data: "):
                    at = line.split('"at":"', 1)[1].split('"', 1)[0]
                    row_id = int(line.split('"id":', 1)[1].split(",", 1)[0])
                    self.arrivals.append((time.time(), at, row_id))
                    if len(self.arrivals) >= self.wanted:
                        return


#: ``api_server(url, workers)``: a running ``pystator api`` (bench/api.py's), yielding its URL.
ApiServer = Callable[[str, int], AbstractContextManager[str]]


@contextmanager
def _stack(
    api_server: ApiServer, fleet_workers: int, relay_interval: float
) -> Iterator[tuple[str, str, WorkerFleet]]:
    with tempfile.TemporaryDirectory() as tmp, bench_database() as url:
        broker = RedisServer(log_path=Path(tmp) / "redis.log")
        with broker:
            create_schema(url)
            with (
                producer_runtime(url, broker.url, MACHINES),
                api_server(url, 1) as base,
                WorkerFleet(
                    database_url=url,
                    broker_url=broker.url,
                    log_dir=Path(tmp),
                    concurrency=4,
                    machines=MACHINES,
                    app=None,
                    extra_env={"PYSTATOR_RELAY_INTERVAL_SECONDS": str(relay_interval)},
                ) as fleet,
            ):
                fleet.start_all(fleet_workers)
                try:
                    yield url, base, fleet
                finally:
                    fleet.stop_all()


def measure_stream(
    api_server: ApiServer, fleet_workers: int, entities: int, events_per_entity: int
) -> StreamResult:
    """The SSE lag while the fleet drains ``entities x events_per_entity`` events."""
    from pystator.worker import submit_event_sync, submit_events

    with _stack(api_server, fleet_workers, 1.0) as (url, base, fleet):
        engine = sa.create_engine(url)
        for n in range(fleet_workers * 4):  # the workers are up and warm
            submit_event_sync(MACHINE, f"warm-{n}", "next", db_url=url)
        try:
            wait_until(lambda: pending_count(engine) == 0, timeout=120, message="warm-up")
        except TimeoutError:
            print(fleet.log_tail(), file=sys.stderr)
            raise
        burst = entities * events_per_entity
        watcher = _Watcher(url)
        watcher.start()
        reader = _Reader(base, burst)
        reader.start()
        reader.ready.wait(30)
        events = [
            {"machine_name": MACHINE, "entity_id": f"s-{e}", "trigger": "next"}
            for _ in range(events_per_entity)
            for e in range(entities)
        ]
        submit_events(events, db_url=url)
        reader.join(TIMEOUT_SECONDS)
        watcher.stop.set()
        watcher.join(30)
        with engine.connect() as conn:
            committed = conn.execute(
                sa.text("SELECT count(*) FROM transition_history WHERE entity_id LIKE 's-%'")
            ).scalar_one()
        engine.dispose()
    stamps = [datetime.fromisoformat(at).timestamp() for _, at, _ in reader.arrivals]
    span = max(stamps) - min(stamps) if stamps else 0.0
    lags = [
        (arrived - s) * 1000 for (arrived, _, _), s in zip(reader.arrivals, stamps, strict=True)
    ]
    by_apply = [lag for _, lag in sorted(zip(stamps, lags, strict=True))]
    quarter = max(len(by_apply) // 4, 1)
    return StreamResult(
        events=len(reader.arrivals),
        drain_per_second=len(stamps) / span if span else 0.0,
        committed=int(committed),
        distinct=len({row_id for _, _, row_id in reader.arrivals}),
        quarter_p99_ms=(_pct(by_apply[:quarter], 0.99), _pct(by_apply[-quarter:], 0.99)),
        lags_ms=lags,
        commit_lags_ms=[
            (arrived - watcher.first_seen[row_id]) * 1000
            for arrived, _, row_id in reader.arrivals
            if row_id in watcher.first_seen
        ],
    )


class _Receiver(ThreadingHTTPServer):
    def __init__(self) -> None:
        self.count = 0
        self.lock = threading.Lock()
        self.last = 0.0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keeps connections open, as real receivers do

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver.lock:
                    receiver.count += 1
                    receiver.last = time.perf_counter()
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        super().__init__(("127.0.0.1", free_port()), Handler)


def measure_webhooks(
    api_server: ApiServer, fleet_workers: int, deliveries: int, relay_interval: float
) -> WebhookResult:
    """Deliveries/s from the outbox to a local receiver."""
    receiver = _Receiver()
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    try:
        with _stack(api_server, fleet_workers, relay_interval) as (url, _base, _fleet):
            engine = fleet_engine(url, pool_size=1)
            try:
                port = receiver.server_address[1]
                spec = WebhookSpec(
                    name="bench", url=f"http://127.0.0.1:{port}/", kinds=["dead_letter"]
                )
                hook = webhooks.create(engine, spec, by=Actor.python("bench", "bench"))
                started = time.perf_counter()
                with engine.begin() as conn:
                    now = read_now(conn)
                    for n in range(deliveries):
                        enqueue(conn, hook, kind=TEST, source_key=f"b{n}", payload={}, now=now)
                wait_until(
                    lambda: receiver.count >= deliveries,
                    timeout=TIMEOUT_SECONDS,
                    interval=0.05,
                    message="every delivery received",
                )
                with engine.connect() as conn:
                    rows = webhook_queries.list_deliveries(conn, webhook_id=hook.id, limit=1)
                assert rows and rows[0].status in ("delivered", "pending")
            finally:
                dispose(engine)
        return WebhookResult(deliveries=receiver.count, seconds=receiver.last - started)
    finally:
        receiver.shutdown()
        receiver.server_close()


def print_rows(
    stream: StreamResult, hooks: list[tuple[float, WebhookResult]], workers: int
) -> None:
    """The live rows of the API benchmark."""
    print(
        f"\n{'SSE /api/v1/transitions/stream':<34}{'events':>8}{'drain ev/s':>12}"
        f"{'lag p50 ms':>12}{'lag p99 ms':>12}{'max ms':>9}"
    )
    for label, lags in (
        ("from apply (transaction start)", stream.lags_ms),
        ("from commit (first visible)", stream.commit_lags_ms),
    ):
        print(
            f"{label:<34}{stream.events:>8,}{stream.drain_per_second:>12,.0f}"
            f"{statistics.median(lags or [0]):>12.0f}{_pct(lags, 0.99):>12.0f}"
            f"{max(lags or [0]):>9.0f}"
        )
    first, last = stream.quarter_p99_ms
    print(
        f"keeps up: lag p99 (from apply) {first:.0f} ms in the first quarter of the burst, "
        f"{last:.0f} ms in the last; delivered {stream.distinct:,} distinct of "
        f"{stream.committed:,} committed ({stream.events - stream.distinct} repeats)"
    )
    print(f"({workers} worker processes x 4 threads, one SSE client)")
    print(f"\n{'webhook deliveries':<34}{'sent':>8}{'seconds':>12}{'per s':>12}")
    for interval, result in hooks:
        label = f"{workers} relays, every {interval:g} s"
        print(
            f"{label:<34}{result.deliveries:>8,}{result.seconds:>12.1f}{result.per_second:>12,.0f}"
        )


__all__ = ["StreamResult", "WebhookResult", "measure_stream", "measure_webhooks", "print_rows"]
