"""The worker fleet: submit events, and workers that apply them in order, exactly once.

Producer API (``submit_event``, ``submit_event_sync``, ``submit_events``, ``enqueue``) — see the
README's Worker section — and ``Worker`` / ``WorkerConfig``, a worker run from Python with
asyncio. The Celery app lives in :mod:`pystator.worker.app`.
"""

from __future__ import annotations

from pystator.worker.api import enqueue, submit_event, submit_event_sync, submit_events
from pystator.worker.config import WorkerConfig
from pystator.worker.producer import EventSpec, Producer, Receipt
from pystator.worker.service import Worker

__all__ = [
    "EventSpec",
    "Producer",
    "Receipt",
    "Worker",
    "WorkerConfig",
    "enqueue",
    "submit_event",
    "submit_event_sync",
    "submit_events",
]
