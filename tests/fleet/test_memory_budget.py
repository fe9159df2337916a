"""Two worker processes drain 2,000 events with ~60 KiB contexts and stay within the documented
per-worker memory budget (RSS sampled while they drain)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import sqlalchemy as sa

from pystator.stores.sql.connections import dispose, fleet_engine
from pystator.stores.sql.schema import worker_events
from tests.support import worker_processes as procs
from tests.support.fleet_processes import producer_runtime
from tests.support.worker import MACHINE

pytestmark = [pytest.mark.integration, pytest.mark.slow]

EVENTS = 2000
ENTITIES = 200
CONTEXT_BYTES = 60 * 1024
CONCURRENCY = 4
#: The README's per-worker budget for these settings: 250 MB baseline (interpreter, Celery,
#: SQLAlchemy, psycopg, the machines) + concurrency x 6 x PYSTATOR_BATCH_MAX_BYTES (a batch's
#: contexts as loaded, as Python objects, and as written back) = 250 + 4 x 6 x 4 MiB = 346 MB.
BUDGET_MB = 250 + CONCURRENCY * 6 * 4


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def test_workers_stay_within_their_memory_budget(
    pg_migrated_url: str, redis_url: str, unique_name: str, tmp_path: Path
) -> None:
    queue = f"pystator-{unique_name}"
    settings = {
        "PYSTATOR_DATABASE_URL": pg_migrated_url,
        "PYSTATOR_BROKER_URL": redis_url,
        "PYSTATOR_QUEUE": queue,
        "PYSTATOR_LOG_FORMAT": "json",
    }
    args = ["worker", "--concurrency", str(CONCURRENCY), "--machines", str(procs.MACHINES)]
    args += ["--app", procs.APP]
    workers = [procs.start(args, settings, tmp_path / f"worker-{n}.log") for n in range(2)]
    engine = fleet_engine(pg_migrated_url)
    peaks = {w.pid: 0.0 for w in workers}
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.1):
            for pid in peaks:
                peaks[pid] = max(peaks[pid], rss_mb(pid))

    sampler = threading.Thread(target=sample, daemon=True)
    try:
        procs.wait_for(lambda: procs.run(["health"], settings).returncode == 0, "the workers")
        sampler.start()
        blob = "m" * (CONTEXT_BYTES - 100)
        with producer_runtime(pg_migrated_url, redis_url, procs.MACHINES, queue=queue) as rt:
            for start in range(0, EVENTS, 200):
                rt.producer.submit_many(
                    [
                        {
                            "machine": MACHINE,
                            "entity_id": f"m{n % ENTITIES}",
                            "trigger": "open" if n < ENTITIES else "bump",
                            "context": {"n": n, "blob": blob},
                        }
                        for n in range(start, start + 200)
                    ]
                )

            def drained() -> bool:
                with engine.connect() as conn:
                    query = sa.select(sa.func.count()).where(worker_events.c.status == "pending")
                    return conn.execute(query).scalar_one() == 0

            procs.wait_for(drained, "the fleet to drain", timeout=180)
    finally:
        stop.set()
        for worker in workers:
            procs.kill(worker)
        dispose(engine)
    print(f"peak RSS per worker (MB): {sorted(round(p) for p in peaks.values())}")
    assert all(0 < peak < BUDGET_MB for peak in peaks.values()), peaks
