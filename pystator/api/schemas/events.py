"""Events: submit, list, show, retry and discard."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, StrictBool, StrictInt

from pystator.api.params import (
    BIGINT_MAX,
    EntityId,
    IdempotencyKey,
    MachineName,
    StrictBigInt,
    Text,
    TriggerName,
)
from pystator.api.schemas.common import Out, Strict
from pystator.config.settings import DEFAULT_MAX_ATTEMPTS
from pystator.fleet.door import MAX_ATTEMPTS_LIMIT

EventStatusName = Literal[
    "pending", "completed", "rejected", "stale", "dead", "cancelled", "discarded"
]


class EventIn(Strict):
    """One event to submit (the idempotency key may also come as the ``Idempotency-Key``
    header)."""

    machine: MachineName
    entity_id: EntityId
    trigger: TriggerName
    context: dict[str, Any] | None = None
    fires_at: datetime | None = Field(default=None, description="not applied before (ISO 8601)")
    max_attempts: StrictInt = Field(
        default=DEFAULT_MAX_ATTEMPTS,
        # the range the door checks (its message names the rule)
        json_schema_extra={"minimum": 1, "maximum": MAX_ATTEMPTS_LIMIT},
    )
    idempotency_key: IdempotencyKey | None = None


class BatchIn(Strict):
    """Events to submit in one transaction (all or nothing)."""

    events: list[EventIn]


class Submitted(Out):
    """A submission's answer: the event id, and whether it repeated an idempotency key."""

    id: int
    duplicate: bool


class BatchOut(Out):
    """A batch's answer, in submission order."""

    items: list[Submitted]
    created: int
    duplicates: int


class EventOut(Out):
    """One ``worker_events`` row."""

    id: int
    machine: str
    entity_id: str
    trigger: str
    context: dict[str, Any]
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
    errors: list[dict[str, Any]]
    outcome: dict[str, Any] | None
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None
    last_duplicate_at: datetime | None = None
    kind: str = Field(default="event", description="event, or apply_data (a data update)")


class EventActionOut(Out):
    """An action an event caused."""

    id: int
    action: str
    phase: str
    attempts: int
    status: str


class EventDetailOut(EventOut):
    """One event with every attempt's error, its outcome and its actions."""

    actions: list[EventActionOut]


class EventPage(Out):
    """A page of events, newest first; pass ``next_cursor`` as ``cursor`` for the next."""

    items: list[EventOut]
    next_cursor: int | None
    limit: int


class _EventFilterFields(BaseModel):
    """Which events (every field optional, combined with AND)."""

    status: EventStatusName | None = None
    machine: Text | None = None
    entity_id: Text | None = None
    trigger: Text | None = None
    origin: Literal["submit", "timer", "replay"] | None = None
    idempotency_key: Text | None = None
    error: Text | None = Field(default=None, description="substring of an attempt's error")
    created_after: datetime | None = None
    created_before: datetime | None = None


class EventFilterIn(_EventFilterFields, Strict):
    """Which events, in a request body (unknown fields refused)."""


class EventQuery(_EventFilterFields):
    """Which events, as query parameters (beside ``limit`` and ``cursor``)."""


class Selection(Strict):
    """What a retry or discard applies to: ids, a filter, or both (AND)."""

    ids: list[StrictBigInt] = Field(default_factory=list)
    filter: EventFilterIn | None = None
    dry_run: StrictBool = False
    limit: StrictInt | None = Field(
        default=None, ge=1, le=BIGINT_MAX, description="most rows to change (capped by the server)"
    )


class BulkOut(Out):
    """What a retry or discard did (or, with ``dry_run``, would do)."""

    dry_run: bool
    matched: int  # rows the selection matches now
    selected: int  # of those, how many this call changes (at most ``limit``)
    affected: int | None  # how many it changed (None on a dry run)
    limit: int
    entities: int | None = None  # retry: entities nudged


__all__ = [
    "BatchIn",
    "BatchOut",
    "BulkOut",
    "EventDetailOut",
    "EventFilterIn",
    "EventIn",
    "EventOut",
    "EventPage",
    "EventQuery",
    "EventStatusName",
    "Selection",
    "Submitted",
]
