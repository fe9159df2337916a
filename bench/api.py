"""HTTP API benchmark: submit rate (single events and batches) through ``pystator api --workers
2``, the latency of ``GET /api/v1/events`` with filters over 1,000,000 rows, the SSE stream's
lag behind a draining fleet and webhook deliveries/s (``bench/api_live.py``).

    .venv/bin/python bench/api.py [--rows 1000000] [--seconds 10] [--concurrency 32]
    .venv/bin/python bench/api.py --live-only [--fleet-workers 2] [--webhooks 2000]

Runs on the local PostgreSQL (a database it creates and drops), seeds the rows with one
``INSERT … SELECT generate_series`` (five machines, 100,000 entities, a week of ``created_at``,
2% dead with errors, 1% pending), starts ``pystator api --workers 2`` on a free loopback port with
an operator API key (auth on), and drives it from this process with an async HTTP client. Numbers
are printed, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import api_live  # bench/api_live.py: the SSE lag and webhook rows
import httpx
import report  # bench/report.py: every run is saved as JSON
import sqlalchemy as sa

# this directory is on sys.path when run as a script
from scratch_db import scratch_database  # type: ignore[import-not-found]

from pystator.registry import versions
from pystator.services import api_keys
from pystator.services.audit import Actor
from pystator.stores.sql import migrator
from pystator.stores.sql.connections import dispose, fleet_engine

ROOT = Path(__file__).resolve().parent.parent
PG_SERVER_URL = os.environ.get(
    "PYSTATOR_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
MACHINES = [f"bench_api_{i}" for i in range(5)]
TRIGGERS = ["ship", "deliver", "cancel"]
BATCH_SIZE = 1000
BATCH_CONCURRENCY = 4
LATENCY_REQUESTS = 300
WARM_UP_REQUESTS = 200
TARGETS = {"single": 800.0, "batch": 10_000.0, "p99_ms": 50.0}

SEED_SQL = """
INSERT INTO worker_events (machine, entity_id, trigger, context, status, origin,
    idempotency_key, duplicate_count, attempts, max_attempts, fires_at, errors, outcome,
    created_at, updated_at, completed_at)
SELECT 'bench_api_' || (g % 5),
       'e' || (g % 100000),
       (ARRAY['ship','deliver','cancel'])[1 + g % 3],
       jsonb_build_object('n', g),
       CASE WHEN g % 100 < 2 THEN 'dead' WHEN g % 100 = 2 THEN 'pending' ELSE 'completed' END,
       CASE WHEN g % 10 = 0 THEN 'timer' ELSE 'submit' END,
       CASE WHEN g % 4 = 0 THEN 'key-' || g ELSE NULL END,
       0,
       CASE WHEN g % 100 < 2 THEN 5 ELSE 1 END,
       5,
       t,
       CASE WHEN g % 100 < 2 THEN jsonb_build_array(jsonb_build_object(
           'attempt', 5, 'error', 'RuntimeError',
           'message', CASE WHEN g % 3 = 0 THEN 'carrier timeout after 30 s'
                           ELSE 'connection refused by warehouse ' || (g % 7) END))
            ELSE '[]'::jsonb END,
       CASE WHEN g % 100 < 3 THEN NULL ELSE '{"target_state": "shipped"}'::jsonb END,
       t, t, CASE WHEN g % 100 = 2 THEN NULL ELSE t END
FROM (SELECT g, now() - interval '7 days' + (g * interval '7 days' / :rows) AS t
      FROM generate_series(1, :rows) AS g) AS s
"""


def machine(name: str) -> dict[str, Any]:
    """A small machine with the bench triggers."""
    return {
        "meta": {"machine_name": name},
        "states": [
            {"name": "created", "type": "initial"},
            {"name": "shipped", "type": "stable"},
            {"name": "done", "type": "terminal"},
        ],
        "transitions": [
            {"trigger": "ship", "source": "created", "dest": "shipped"},
            {"trigger": "ship", "source": "shipped", "dest": "shipped"},
            {"trigger": "deliver", "source": "shipped", "dest": "done"},
            {"trigger": "cancel", "source": ["created", "shipped"], "dest": "done"},
        ],
    }


@contextmanager
def bench_database() -> Iterator[str]:
    """A fresh, migrated database on the local PostgreSQL, dropped on exit."""
    with scratch_database(PG_SERVER_URL, prefix="pystator_bench_api") as url:
        migrator.upgrade(url)
        yield url


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def prepare(url: str, rows: int) -> str:
    """Publish the machines, seed ``rows`` events, create an operator key; returns the key."""
    engine = fleet_engine(url, pool_size=1)
    try:
        for name in MACHINES:
            versions.publish(engine, machine(name), by=Actor.python("bench", "bench"))
        if rows:
            started = time.perf_counter()
            with engine.begin() as conn:
                conn.execute(sa.text(SEED_SQL), {"rows": rows})
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(sa.text("VACUUM ANALYZE worker_events"))
            print(f"seeded {rows:,} events in {time.perf_counter() - started:.1f} s")
        return api_keys.create_key(
            engine, role="operator", name="bench", by=Actor.python("bench", "bench")
        ).secret
    finally:
        dispose(engine)


@contextmanager
def api_server(url: str, workers: int) -> Iterator[str]:
    """``pystator api --workers N`` on a free loopback port; yields its base URL."""
    port = free_port()
    env = {**os.environ, "PYSTATOR_DATABASE_URL": url, "PYSTATOR_LOG_FORMAT": "json"}
    # this checkout's code, whichever one the venv's console script was installed from
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")]))
    env.pop("PYSTATOR_BROKER_URL", None)  # the in-process broker: no nudges to publish
    script = Path(sys.executable).with_name("pystator")
    proc = subprocess.Popen(
        [str(script), "api", "--port", str(port), "--workers", str(workers)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(base + "/health").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("the API did not start")
            time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@dataclass
class Rate:
    name: str
    count: int
    seconds: float
    errors: int

    @property
    def per_second(self) -> float:
        return self.count / self.seconds if self.seconds else 0.0


class RawConnection:
    """One keep-alive HTTP/1.1 connection that sends a POST and reads the answer: a client
    much lighter than httpx, so that on a 2-core machine the client leaves the CPU to the
    server (what a load generator like wrk does)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, port: int) -> RawConnection:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def post(self, path: str, body: bytes, headers: bytes) -> int:
        self.writer.write(
            b"POST "
            + path.encode()
            + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            + headers
            + b"Content-Type: application/json\r\nContent-Length: "
            + str(len(body)).encode()
            + b"\r\n\r\n"
            + body
        )
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        await self.reader.readexactly(length)
        return status

    def close(self) -> None:
        self.writer.close()


async def submit_singles(base: str, key: str, seconds: float, concurrency: int) -> Rate:
    """Single ``POST /api/v1/events`` from ``concurrency`` keep-alive connections for
    ``seconds`` (after 2 s of warm-up)."""
    port = int(base.rsplit(":", 1)[1])
    headers = f"Authorization: Bearer {key}\r\n".encode()
    connections = [await RawConnection.open(port) for _ in range(concurrency)]
    done = errors = 0

    async def loop(worker: int, until: float, counting: bool) -> None:
        nonlocal done, errors
        connection = connections[worker]
        n = 0
        while time.perf_counter() < until:
            n += 1
            body = (
                f'{{"machine": "{MACHINES[n % 5]}", "entity_id": "s{worker}-{n}-{counting}", '
                f'"trigger": "ship", "context": {{"n": {n}}}}}'
            ).encode()
            status = await connection.post("/api/v1/events", body, headers)
            if counting:
                done += 1
                errors += status != 201

    warm = time.perf_counter() + 2
    await asyncio.gather(*(loop(w, warm, False) for w in range(concurrency)))
    started = time.perf_counter()
    until = started + seconds
    await asyncio.gather(*(loop(w, until, True) for w in range(concurrency)))
    elapsed = time.perf_counter() - started
    for connection in connections:
        connection.close()
    return Rate("single", done, elapsed, errors)


async def submit_batches(base: str, key: str, seconds: float) -> Rate:
    """``POST /api/v1/events/batch`` of :data:`BATCH_SIZE` events, :data:`BATCH_CONCURRENCY` at
    a time, for ``seconds``."""
    headers = {"Authorization": f"Bearer {key}"}
    events = errors = 0
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=60) as client:

        async def loop(worker: int, until: float) -> None:
            nonlocal events, errors
            n = 0
            while time.perf_counter() < until:
                n += 1
                batch = [
                    {
                        "machine": MACHINES[i % 5],
                        "entity_id": f"b{worker}-{n}-{i}",
                        "trigger": "ship",
                    }
                    for i in range(BATCH_SIZE)
                ]
                response = await client.post("/api/v1/events/batch", json={"events": batch})
                events += BATCH_SIZE
                errors += response.status_code != 201

        started = time.perf_counter()
        until = started + seconds
        await asyncio.gather(*(loop(w, until) for w in range(BATCH_CONCURRENCY)))
        elapsed = time.perf_counter() - started
    return Rate(f"batch of {BATCH_SIZE}", events, elapsed, errors)


#: Filter sets of the listing benchmark (``GET /api/v1/events``, 50 per page).
LISTINGS: list[tuple[str, dict[str, Any]]] = [
    ("no filter", {}),
    ("machine", {"machine": "bench_api_3"}),
    ("status=dead", {"status": "dead"}),
    ("status=dead & machine", {"status": "dead", "machine": "bench_api_1"}),
    ("entity_id", {"entity_id": "e4242"}),
    ("machine & entity_id", {"machine": "bench_api_2", "entity_id": "e31337"}),
    ("status=pending & trigger", {"status": "pending", "trigger": "cancel"}),
    ("dead & error substring", {"status": "dead", "error": "carrier timeout"}),
    ("origin=timer & machine", {"origin": "timer", "machine": "bench_api_0"}),
    ("machine & idempotency_key", {"machine": "bench_api_0", "idempotency_key": "key-400000"}),
    (
        "machine & 1 h window",
        {"machine": "bench_api_4", "created_after": "{h1}", "created_before": "{h0}"},
    ),
]


async def listing_latency(base: str, key: str) -> list[tuple[str, float, float, int]]:
    """p50 / p99 (ms) of each filter set, one request at a time, page 2 via the cursor
    included."""
    now = time.time()
    hours = {
        "{h1}": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - 3 * 86400)),
        "{h0}": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - 3 * 86400 + 3600)),
    }
    results = []
    async with httpx.AsyncClient(
        base_url=base, headers={"Authorization": f"Bearer {key}"}
    ) as client:
        for _ in range(WARM_UP_REQUESTS // len(LISTINGS)):
            for _name, params in LISTINGS:
                await client.get("/api/v1/events", params=_fill(params, hours))
        for name, params in LISTINGS:
            filled = _fill(params, hours)
            samples = []
            items = 0
            cursor = None
            for i in range(LATENCY_REQUESTS):
                query = dict(filled)
                if i % 2 and cursor is not None:
                    query["cursor"] = cursor  # every other request fetches the next page
                started = time.perf_counter()
                response = await client.get("/api/v1/events", params=query)
                samples.append((time.perf_counter() - started) * 1000)
                page = response.json()
                items = len(page["items"]) if "cursor" not in query else items
                cursor = page.get("next_cursor")
            samples.sort()
            p99 = samples[min(len(samples) - 1, int(len(samples) * 0.99))]
            results.append((name, statistics.median(samples), p99, items))
    return results


def _fill(params: dict[str, Any], hours: dict[str, str]) -> dict[str, Any]:
    return {k: hours.get(v, v) if isinstance(v, str) else v for k, v in params.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2, help="API processes")
    parser.add_argument(
        "--live-only", action="store_true", help="only the SSE lag and webhook rows"
    )
    parser.add_argument("--fleet-workers", type=int, default=2, help="worker processes")
    parser.add_argument("--burst-entities", type=int, default=4000)
    parser.add_argument("--burst-events", type=int, default=5, help="events per entity")
    parser.add_argument("--webhooks", type=int, default=2000, help="deliveries to send")
    args = parser.parse_args(argv)
    if not args.live_only:
        submit_and_listing_rows(args)
    live_rows(args)
    return 0


def live_rows(args: argparse.Namespace) -> None:
    """The SSE lag while a fleet drains a burst, and webhook deliveries/s (bench/api_live.py)."""
    stream = api_live.measure_stream(
        api_server, args.fleet_workers, args.burst_entities, args.burst_events
    )
    hooks = [
        (
            interval,
            api_live.measure_webhooks(api_server, args.fleet_workers, args.webhooks, interval),
        )
        for interval in (1.0, 0.1)
    ]
    api_live.print_rows(stream, hooks, args.fleet_workers)


def submit_and_listing_rows(args: argparse.Namespace) -> None:
    """Submit rates and listing latency."""
    with bench_database() as url:
        key = prepare(url, args.rows)
        with api_server(url, args.workers) as base:
            listing = asyncio.run(listing_latency(base, key))
            single = asyncio.run(submit_singles(base, key, args.seconds, args.concurrency))
            batch = asyncio.run(submit_batches(base, key, args.seconds))
    cpus = os.cpu_count()
    print(
        f"\npystator api --workers {args.workers} on {cpus} CPUs (PostgreSQL, client and server "
        f"on this machine); {args.rows:,} seeded events; operator API key auth; audit rows on"
    )
    print(
        f"\n{'submit':<16}{'events':>10}{'seconds':>9}{'events/s':>11}{'errors':>8}{'target':>10}"
    )
    for rate, target in ((single, TARGETS["single"]), (batch, TARGETS["batch"])):
        print(
            f"{rate.name:<16}{rate.count:>10,}{rate.seconds:>9.1f}{rate.per_second:>11,.0f}"
            f"{rate.errors:>8}{'>= ' + format(int(target), ','):>10}"
        )
    print(
        f"\n{'GET /api/v1/events':<28}{'p50 ms':>8}{'p99 ms':>8}{'rows':>6}   (target p99 <= 50 ms)"
    )
    for name, p50, p99, items in listing:
        print(f"{name:<28}{p50:>8.1f}{p99:>8.1f}{items:>6}")
    worst = max(p99 for _, _, p99, _ in listing)
    print(f"{'worst p99':<28}{'':>8}{worst:>8.1f}")


if __name__ == "__main__":
    with report.recorded("api") as run:
        run.exit_code = main()
    sys.exit(run.exit_code)
