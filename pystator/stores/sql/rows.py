"""Value objects for the fleet's tables (``worker_events``, ``action_outbox``) and their row readers.

The query modules, the worker and the operator functions all speak in these; none of them holds
SQL. Statuses and origins are the enums of :mod:`pystator.fsm_core.records`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from enum import StrEnum
from typing import Any

from pystator.fsm_core.clock import as_utc, as_utc_or_none
from pystator.fsm_core.records import EventKind, EventOrigin, EventStatus

#: Rows per INSERT statement (keeps PostgreSQL under its 65,535 bind parameter limit).
INSERT_CHUNK_ROWS = 2000

#: Statuses an operator may send back to ``pending``.
REPLAYABLE = (
    EventStatus.REJECTED,
    EventStatus.STALE,
    EventStatus.DEAD,
    EventStatus.DISCARDED,
    EventStatus.CANCELLED,
)
#: Statuses an operator may discard.
DISCARDABLE = (EventStatus.PENDING, EventStatus.DEAD, EventStatus.REJECTED)


class OutboxStatus(StrEnum):
    """The lifecycle of an ``action_outbox`` row."""

    PENDING = "pending"
    DONE = "done"
    DEAD = "dead"
    DISCARDED = "discarded"


@dataclass(frozen=True, slots=True, kw_only=True)
class NewEvent:
    """An event to insert into ``worker_events``."""

    machine: str
    entity_id: str
    trigger: str
    context: Mapping[str, Any] = field(default_factory=dict)
    fires_at: datetime | None  # None: due when inserted, by the database's clock
    origin: str = EventOrigin.SUBMIT
    idempotency_key: str | None = None
    max_attempts: int = 5
    timer_key: str | None = None
    timer_state: str | None = None
    timer_entry: int | None = None
    encoded_context: str | None = None  # the context's JSON text, when the door already made it
    fingerprint: str | None = None  # keyed events: what makes a repeat "the same event"
    traceparent: str | None = None  # the submission's trace context (OpenTelemetry)
    kind: str = EventKind.EVENT  # event | apply_data


@dataclass(frozen=True, slots=True, kw_only=True)
class Inserted:
    """What inserting one event did: a new row, a duplicate of the key's event, or a conflict
    (the key belongs to a different event; nothing changed). ``id`` is the row holding it."""

    id: int
    duplicate: bool
    conflict: bool = False
    due: bool = False  # due when inserted (its fires_at had come by the inserting statement)


@dataclass(frozen=True, slots=True, kw_only=True)
class EventRow:
    """One ``worker_events`` row as read back."""

    id: int
    machine: str
    entity_id: str
    trigger: str
    context: Mapping[str, Any]
    status: str
    origin: str
    idempotency_key: str | None
    duplicate_count: int
    attempts: int
    max_attempts: int
    fires_at: datetime
    timer_key: str | None
    timer_state: str | None
    timer_entry: int | None
    errors: tuple[Mapping[str, Any], ...]
    outcome: Mapping[str, Any] | None
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None
    last_duplicate_at: datetime | None = None  # the key's last repeat with the same content
    traceparent: str | None = None  # the submission's trace context (OpenTelemetry)
    kind: str = EventKind.EVENT  # event | apply_data (a data update routed by ``when`` rules)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly view (operator commands and the HTTP API)."""
        data = {name: getattr(self, name) for name in self.__slots__}
        for key in ("fires_at", "created_at", "updated_at", "completed_at", "last_duplicate_at"):
            value = data[key]
            data[key] = value.isoformat() if value is not None else None
        data["errors"] = [dict(e) for e in self.errors]
        data["context"] = dict(self.context)
        return data


@dataclass(frozen=True, slots=True, kw_only=True)
class FinishedEvent:
    """An event leaving ``pending`` for good: completed, rejected or stale."""

    id: int
    status: EventStatus
    outcome: Mapping[str, Any]


@dataclass(frozen=True, slots=True, kw_only=True)
class FailedEvent:
    """A failed attempt of an event: due again at ``retry_at``, or dead when it is None."""

    id: int
    errors: Sequence[Mapping[str, Any]]
    retry_at: datetime | None


@dataclass(frozen=True, slots=True, kw_only=True)
class NewAction:
    """An action to run after commit (one ``action_outbox`` row)."""

    event_id: int | None
    machine: str
    entity_id: str
    entity_version: int
    action: str
    phase: str
    params: Mapping[str, Any]
    context: Mapping[str, Any]
    traceparent: str | None = None  # the apply span's trace context (OpenTelemetry)


@dataclass(frozen=True, slots=True, kw_only=True)
class OutboxRow(NewAction):
    """One ``action_outbox`` row as read back; ``id`` is the action's dedup token."""

    id: int
    attempts: int = 0
    errors: tuple[Mapping[str, Any], ...] = ()
    status: str = OutboxStatus.PENDING

    @classmethod
    def committed(cls, action_id: int, action: NewAction) -> OutboxRow:
        """The row an insert of ``action`` created, without reading it back."""
        return cls(id=action_id, **{f.name: getattr(action, f.name) for f in fields(NewAction)})


def event_from_row(row: Any) -> EventRow:
    """Build an :class:`EventRow` from a ``worker_events`` row mapping."""
    return EventRow(
        id=int(row["id"]),
        machine=row["machine"],
        entity_id=row["entity_id"],
        trigger=row["trigger"],
        context=row["context"] or {},
        status=row["status"],
        origin=row["origin"],
        idempotency_key=row["idempotency_key"],
        duplicate_count=int(row["duplicate_count"]),
        attempts=int(row["attempts"]),
        max_attempts=int(row["max_attempts"]),
        fires_at=as_utc(row["fires_at"]),
        timer_key=row["timer_key"],
        timer_state=row["timer_state"],
        timer_entry=row["timer_entry"],
        errors=tuple(row["errors"] or ()),
        outcome=row["outcome"],
        created_at=as_utc(row["created_at"]),
        updated_at=as_utc(row["updated_at"]),
        completed_at=as_utc_or_none(row["completed_at"]),
        last_duplicate_at=as_utc_or_none(row.get("last_duplicate_at")),
        traceparent=row.get("traceparent"),
        kind=row.get("kind") or EventKind.EVENT,
    )


def outbox_from_row(row: Any) -> OutboxRow:
    """Build an :class:`OutboxRow` from an ``action_outbox`` row mapping."""
    return OutboxRow(
        id=int(row["id"]),
        event_id=row["event_id"],
        machine=row["machine"],
        entity_id=row["entity_id"],
        entity_version=int(row["entity_version"]),
        action=row["action"],
        phase=row["phase"],
        params=row["params"] or {},
        context=row["context"] or {},
        attempts=int(row["attempts"]),
        errors=tuple(row["errors"] or ()),
        status=row["status"],
        traceparent=row.get("traceparent"),
    )


def chunks(items: Sequence[Any], size: int = INSERT_CHUNK_ROWS) -> Iterable[Sequence[Any]]:
    """``items`` in slices of at most ``size``."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


__all__ = [
    "DISCARDABLE",
    "INSERT_CHUNK_ROWS",
    "REPLAYABLE",
    "EventRow",
    "FailedEvent",
    "FinishedEvent",
    "Inserted",
    "NewAction",
    "NewEvent",
    "OutboxRow",
    "OutboxStatus",
    "chunks",
    "event_from_row",
    "outbox_from_row",
]
