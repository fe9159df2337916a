"""The fleet's state: entities, transitions, actions, stats, workers."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, StrictBool, StrictInt

from pystator.api.params import BIGINT_MAX, BigInt, StrictBigInt, Text
from pystator.api.schemas.common import Out, Strict
from pystator.api.schemas.events import EventOut

ActionStatusName = Literal["pending", "done", "dead", "discarded"]


class HistoryOut(Out):
    """One committed transition."""

    machine: str
    entity_id: str
    version: int
    from_state: str | None = Field(alias="from")
    to_state: str = Field(alias="to")
    trigger: str | None
    event_id: int | None
    origin: str
    actions: list[str]
    machine_version: int | None
    at: datetime


class TimerOut(Out):
    """An armed timer."""

    timer_id: str
    trigger: str
    key: str
    state: str
    entry: int
    due_at: datetime
    attempts: int
    dead: bool


class EntityOut(Out):
    """One entity: state, version, context, a page of history (oldest of the page first),
    pending events and armed timers."""

    machine: str
    entity_id: str
    state: str | None
    version: int | None
    context: dict[str, Any] | None
    updated_at: datetime | None
    history: list[HistoryOut]
    next_history_cursor: int | None
    pending: list[EventOut]
    timers: list[TimerOut]


class TransitionOut(HistoryOut):
    """One row of the transition feed (``id`` is its place in commit order)."""

    id: int


class TransitionPage(Out):
    """A page of the feed; pass ``next_cursor`` as ``after``."""

    items: list[TransitionOut]
    next_cursor: int | None
    limit: int


class ActionOut(Out):
    """One ``action_outbox`` row (``id`` is the action's dedup token)."""

    id: int
    event_id: int | None
    machine: str
    entity_id: str
    entity_version: int
    action: str
    phase: str
    params: dict[str, Any]
    status: str
    attempts: int
    errors: list[dict[str, Any]]


class ActionPage(Out):
    """A page of outbox rows, newest first."""

    items: list[ActionOut]
    next_cursor: int | None
    limit: int


class _ActionFilterFields(BaseModel):
    """Which outbox rows (combined with AND)."""

    status: ActionStatusName | None = None
    machine: Text | None = None
    entity_id: Text | None = None
    action: Text | None = None
    event_id: BigInt | None = None


class ActionFilterIn(_ActionFilterFields, Strict):
    """Which outbox rows, in a request body."""

    event_id: StrictBigInt | None = None


class ActionQuery(_ActionFilterFields):
    """Which outbox rows, as query parameters."""


class ActionSelection(Strict):
    """What an action retry or discard applies to."""

    ids: list[StrictBigInt] = Field(default_factory=list)
    filter: ActionFilterIn | None = None
    dry_run: StrictBool = False
    limit: StrictInt | None = Field(default=None, ge=1, le=BIGINT_MAX)


class BacklogOut(Out):
    """Pending work."""

    pending: int
    due: int
    oldest_due_seconds: float


class MinuteOut(Out):
    """One minute of the last hour."""

    minute: str
    applied: int
    rejected: int
    retried: int
    dead: int


class StatsOut(Out):
    """Counts from the tables."""

    at: datetime
    events: dict[str, int]
    by_machine: dict[str, dict[str, int]]
    duplicates: int
    retried: int
    retrying: int
    outbox: dict[str, int]
    backlog: BacklogOut
    per_minute: list[MinuteOut]


class WorkerOut(Out):
    """A worker process's heartbeat."""

    worker_id: str
    host: str
    pid: int
    kind: str
    started_at: datetime
    beat_at: datetime
    progress_at: datetime
    in_flight: int
    applied: int
    info: dict[str, Any]
    stopped_at: datetime | None


__all__ = [
    "ActionFilterIn",
    "ActionOut",
    "ActionPage",
    "ActionQuery",
    "ActionSelection",
    "EntityOut",
    "HistoryOut",
    "StatsOut",
    "TimerOut",
    "TransitionOut",
    "TransitionPage",
    "WorkerOut",
]
