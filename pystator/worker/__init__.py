"""The worker fleet: submit events, and workers that apply them in order, exactly once.

Producer API (``submit_event``, ``submit_event_sync``, ``submit_events``, ``enqueue``) — see the
README's Worker section. The Celery app lives in :mod:`pystator.worker.app`.
"""

from __future__ import annotations

from pystator.worker.api import enqueue, submit_event, submit_event_sync, submit_events
from pystator.worker.producer import EventSpec, Producer, Receipt

__all__ = [
    "EventSpec",
    "Producer",
    "Receipt",
    "enqueue",
    "submit_event",
    "submit_event_sync",
    "submit_events",
]
