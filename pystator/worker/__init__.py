"""The worker fleet: submit events, and workers that apply them in order, exactly once.

Producer API (``submit_event``, ``submit_event_sync``, ``submit_events``, ``enqueue``) — see the
README's Worker section — and ``Worker`` / ``WorkerConfig``, a worker run from Python with
asyncio. The Celery app lives in :mod:`pystator.fleet.app` (``celery -A pystator.worker.app``).
"""

from __future__ import annotations

from pystator.fleet.config import WorkerConfig
from pystator.fleet.models import ClaimedEvent, EventStatus, WorkerEvent
from pystator.fleet.producer import EventSpec, Producer, Receipt
from pystator.fleet.submit import (
    enqueue,
    submit_apply_data,
    submit_apply_data_sync,
    submit_event,
    submit_event_sync,
    submit_events,
)
from pystator.fleet.worker import Worker

__all__ = [
    "ClaimedEvent",
    "EventSpec",
    "EventStatus",
    "Producer",
    "Receipt",
    "Worker",
    "WorkerConfig",
    "WorkerEvent",
    "enqueue",
    "submit_apply_data",
    "submit_apply_data_sync",
    "submit_event",
    "submit_event_sync",
    "submit_events",
]
