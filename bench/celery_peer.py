"""The "hand-rolled Celery" baseline of ``bench/fleet.py``: a no-op task and its round trip.

Run by the bench as ``celery -A bench.celery_peer worker``; broker and result backend come from
``BENCH_CELERY_BROKER`` / ``BENCH_CELERY_BACKEND``.
"""

from __future__ import annotations

import os

from celery import Celery

app = Celery(
    "bench_peer",
    broker=os.environ.get("BENCH_CELERY_BROKER", "redis://127.0.0.1:6379/14"),
    backend=os.environ.get("BENCH_CELERY_BACKEND", "redis://127.0.0.1:6379/14"),
)
app.conf.update(
    task_default_queue="bench-peer",
    worker_prefetch_multiplier=64,
    worker_hijack_root_logger=False,
    broker_connection_retry_on_startup=True,
    result_expires=300,
)


@app.task(name="bench.noop")
def noop(n: int) -> int:
    """Do nothing; return the argument so the round trip carries a result."""
    return n
