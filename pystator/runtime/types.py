"""The value types ``PyStatorRuntime`` answers with: entity snapshots, queued events, the
transition feed's rows and pages, the observability summary."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pystator.fsm_core.records import EntityRecord, EventStatus, HistoryEntry
from pystator.services.admin import EventRow


@dataclass(frozen=True, slots=True, kw_only=True)
class EntitySnapshot:
    """One entity as stored: machine, id, state (a parallel configuration is encoded as
    ``'RUN[motor=ON,light=LIT]'``), context and version (1 when created, +1 per transition)."""

    machine_name: str
    entity_id: str
    state: str
    context: Mapping[str, Any]
    version: int
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @classmethod
    def from_record(cls, record: EntityRecord) -> EntitySnapshot:
        """The snapshot of a stored record."""
        return cls(
            machine_name=record.machine,
            entity_id=record.entity_id,
            state=record.state,
            context=dict(record.context),
            version=record.version,
            created_at=record.created_at,
            updated_at=record.updated_at,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class QueuedEvent:
    """One queued event (a ``worker_events`` row) as the queue reports it."""

    event_id: int
    machine_name: str
    entity_id: str
    trigger: str
    status: EventStatus
    attempts: int
    max_attempts: int
    context: Mapping[str, Any] = field(default_factory=dict)
    errors: tuple[Mapping[str, Any], ...] = ()
    outcome: Mapping[str, Any] | None = None
    created_at: datetime | None = None
    completed_at: datetime | None = None

    @property
    def done(self) -> bool:
        """True once the event left ``pending`` (applied, rejected, stale, dead, …)."""
        return self.status is not EventStatus.PENDING

    @classmethod
    def from_row(cls, row: EventRow) -> QueuedEvent:
        """The queue's view of a stored row."""
        return cls(
            event_id=row.id,
            machine_name=row.machine,
            entity_id=row.entity_id,
            trigger=row.trigger,
            status=EventStatus(row.status),
            attempts=row.attempts,
            max_attempts=row.max_attempts,
            context=dict(row.context),
            errors=tuple(row.errors),
            outcome=row.outcome,
            created_at=row.created_at,
            completed_at=row.completed_at,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class TransitionEvent:
    """One committed transition of the feed (a ``transition_history`` row); ``id`` is its
    cursor, the same as ``GET /api/v1/transitions``'s ``after``."""

    id: int
    machine_name: str
    entity_id: str
    version: int
    from_state: str | None
    to_state: str
    trigger: str
    event_id: int | None
    origin: str
    actions: tuple[str, ...]
    machine_version: int | None
    at: datetime

    @classmethod
    def from_entry(cls, row_id: int, entry: HistoryEntry) -> TransitionEvent:
        """The feed's view of a history row."""
        return cls(
            id=row_id,
            machine_name=entry.machine,
            entity_id=entry.entity_id,
            version=entry.version,
            from_state=entry.source_state,
            to_state=entry.target_state,
            trigger=entry.trigger or "",
            event_id=entry.event_id,
            origin=str(entry.origin),
            actions=tuple(entry.actions),
            machine_version=entry.machine_version,
            at=entry.created_at,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class TransitionsPage:
    """One page of the feed, oldest first; pass ``next_cursor`` as ``after`` for the next
    (it is set even on an empty page)."""

    items: tuple[TransitionEvent, ...]
    next_cursor: int | None


@dataclass(frozen=True, slots=True, kw_only=True)
class ObservabilitySummary:
    """KPI facts over a window (no policy): entities, transitions and events in the window,
    events by status, the backlog and the outbox. ``entity`` is the snapshot of the entity
    asked for, if any."""

    at: datetime
    window_hours: float
    machine_name: str | None
    entity_id: str | None
    entities: int
    entities_by_machine: Mapping[str, int]
    entities_by_state: Mapping[str, int]
    transitions_in_window: int
    events_in_window: int
    events_by_status: Mapping[str, int]
    backlog: Mapping[str, Any]
    outbox: Mapping[str, Any]
    entity: EntitySnapshot | None = None


__all__ = [
    "EntitySnapshot",
    "ObservabilitySummary",
    "QueuedEvent",
    "TransitionEvent",
    "TransitionsPage",
]
