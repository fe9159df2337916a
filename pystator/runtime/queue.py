"""``QueueClient``: the queue (``worker_events``) as a Python caller sees it.

Submitting goes through the fleet's producer (the same validation, idempotency and nudges as
``submit_event`` and ``POST /api/v1/events``); reading goes through the operator services (the
same rows ``pystator events …`` and the dashboard show). Waiting polls the event's row: the
queue has no other completion signal, and the row is the source of truth.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Engine

from pystator.config.settings import DEFAULT_MAX_ATTEMPTS
from pystator.fleet.producer import EventSpec, Producer
from pystator.fsm_core.errors import NotFoundError
from pystator.fsm_core.records import EventStatus
from pystator.runtime.types import QueuedEvent
from pystator.services import admin
from pystator.services.admin import EventFilter

#: Seconds between two looks at an event's row while waiting for it.
DEFAULT_POLL_SECONDS = 0.05
#: Longest page ``list_events`` returns.
MAX_PAGE = 1000


class QueueClient:
    """Submit events to the fleet's queue and follow them (the documented queue API)."""

    def __init__(self, engine: Engine, producer: Producer) -> None:
        self.engine = engine
        self.producer = producer

    def submit_event(
        self,
        machine_name: str,
        entity_id: str,
        trigger: str,
        context: Mapping[str, Any] | None = None,
        *,
        fires_at: datetime | None = None,
        idempotency_key: str | None = None,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    ) -> int:
        """Queue a named event for ``entity_id``; returns the event id (a repeated
        ``idempotency_key`` returns the first event's id)."""
        spec = EventSpec(
            machine=machine_name,
            entity_id=entity_id,
            trigger=trigger,
            context=context,
            fires_at=fires_at,
            idempotency_key=idempotency_key,
            max_attempts=max_attempts,
        )
        return int(self.producer.submit(spec))

    def get_event_status(self, event_id: int) -> QueuedEvent | None:
        """The event's row (status, attempts, errors, outcome), or None when there is none."""
        try:
            detail = admin.show_event(self.engine, int(event_id))
        except NotFoundError:
            return None
        return QueuedEvent.from_row(detail.event)

    def wait_for_event(
        self,
        event_id: int,
        *,
        timeout: float = 30.0,
        poll_interval: float = DEFAULT_POLL_SECONDS,
        stop: threading.Event | None = None,
    ) -> QueuedEvent:
        """Wait until the event leaves ``pending`` and return it; :class:`TimeoutError` after
        ``timeout`` seconds, :class:`NotFoundError` when there is no such event."""
        deadline = time.monotonic() + timeout
        pause = stop or threading.Event()
        while True:
            found = self.get_event_status(event_id)
            if found is None:
                raise NotFoundError(f"no event {event_id}", details={"event_id": event_id})
            if found.done:
                return found
            if time.monotonic() >= deadline:
                raise TimeoutError(
                    f"event {event_id} still {found.status.value} after {timeout} s "
                    f"({found.attempts} attempt(s))"
                )
            if pause.wait(poll_interval):
                raise TimeoutError(f"stopped waiting for event {event_id}")

    def list_events(
        self,
        *,
        machine_name: str | None = None,
        entity_id: str | None = None,
        status: EventStatus | str | None = None,
        trigger: str | None = None,
        limit: int = 50,
        before_id: int | None = None,
    ) -> list[QueuedEvent]:
        """Events matching the filters, newest first (``before_id`` continues a page)."""
        where = EventFilter(
            machine=machine_name,
            entity_id=entity_id,
            status=None if status is None else EventStatus(status).value,
            trigger=trigger,
        )
        rows = admin.list_events(
            self.engine, where, limit=max(1, min(limit, MAX_PAGE)), before_id=before_id
        )
        return [QueuedEvent.from_row(row) for row in rows]

    def get_summary(self) -> dict[str, Any]:
        """Counts: events by status, retried and retrying events, duplicates, the outbox."""
        return admin.stats(self.engine)


__all__ = ["DEFAULT_POLL_SECONDS", "QueueClient"]
