"""The documented event models of ``pystator.worker``: what is submitted, what a worker takes.

- :class:`WorkerEvent`: one event to submit, by the documented field names (``machine_name``
  …); :meth:`WorkerEvent.to_spec` is the producer's :class:`~pystator.fleet.producer.EventSpec`.
- :class:`ClaimedEvent`: an event as a worker takes it from ``worker_events`` (id, attempt).
- :class:`EventStatus`: a stored event's lifecycle (``worker_events.status``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pystator.config.settings import DEFAULT_MAX_ATTEMPTS
from pystator.fleet.producer import EventSpec
from pystator.fsm_core.records import EventStatus
from pystator.stores.sql.rows import EventRow


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkerEvent:
    """One event to submit (the fields of ``submit_event``)."""

    machine_name: str
    entity_id: str
    trigger: str
    context: Mapping[str, Any] = field(default_factory=dict)
    fires_at: datetime | None = None
    idempotency_key: str | None = None
    max_attempts: int = DEFAULT_MAX_ATTEMPTS

    def to_spec(self) -> EventSpec:
        """The producer's form of this event (``submit_events`` takes either)."""
        return EventSpec(
            machine=self.machine_name,
            entity_id=self.entity_id,
            trigger=self.trigger,
            context=dict(self.context),
            fires_at=self.fires_at,
            idempotency_key=self.idempotency_key,
            max_attempts=self.max_attempts,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class ClaimedEvent:
    """An event as a worker takes it: its id, fields and the attempt about to be made."""

    event_id: int
    machine_name: str
    entity_id: str
    trigger: str
    context: Mapping[str, Any] = field(default_factory=dict)
    attempt: int = 1
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    status: EventStatus = EventStatus.PENDING

    @classmethod
    def from_row(cls, row: EventRow) -> ClaimedEvent:
        """The claimed form of a stored ``worker_events`` row."""
        return cls(
            event_id=row.id,
            machine_name=row.machine,
            entity_id=row.entity_id,
            trigger=row.trigger,
            context=dict(row.context),
            attempt=row.attempts + 1,
            max_attempts=row.max_attempts,
            status=EventStatus(row.status),
        )


__all__ = ["ClaimedEvent", "EventStatus", "WorkerEvent"]
