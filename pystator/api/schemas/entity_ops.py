"""Bodies and answers of the entity routes (``/api/v1/entities/{entity_id}/…``, bulk), the
observability feeds, the built-in catalog and the settings report."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field, StrictInt, StrictStr

from pystator.api.params import EntityId, MachineName, StrictBigInt, TriggerName
from pystator.api.schemas.common import Out, Strict
from pystator.api.schemas.fleet import HistoryOut, TransitionOut


class EntityCreateIn(Strict):
    """``POST …/create``: the machine and the starting context."""

    machine_name: MachineName
    context: dict[str, Any] | None = None


class EntityEventIn(Strict):
    """``POST …/events`` and ``…/dry-run``: the trigger and the payload merged into the
    context."""

    machine_name: MachineName
    trigger: TriggerName
    context: dict[str, Any] | None = None


class EntityStateOut(Out):
    """Where an entity is."""

    machine_name: str
    entity_id: str
    state: str
    version: int
    updated_at: datetime | None


class EntitySnapshotOut(EntityStateOut):
    """The whole stored record."""

    context: dict[str, Any]
    entries: dict[str, int]
    created_at: datetime | None


class ErrorDetailOut(Out):
    """A structured failure: ``code``, ``type`` (the error class), ``message``, ``details``."""

    code: str
    type: str
    message: str
    details: dict[str, Any] | None = None


class ActionResultOut(Out):
    """What one action did (``ok`` or ``failed``, after ``attempts``)."""

    name: str
    status: str
    attempts: int
    error: str | None


class EntityCreatedOut(EntitySnapshotOut):
    """A created entity (the stored record, effects of its initial state's ``on_enter``
    applied) and what its ``on_enter`` actions did, as an event reports its actions."""

    action_results: list[ActionResultOut]


class EventOutcomeOut(Out):
    """The outcome of a synchronous event (``success: false`` with ``error_detail`` when it was
    rejected or failed: still HTTP 200)."""

    machine_name: str
    entity_id: str
    trigger: str
    success: bool
    source_state: str | None
    target_state: str | None
    version: int | None
    actions: list[str]
    action_results: list[ActionResultOut]
    error_detail: ErrorDetailOut | None
    context: dict[str, Any]


class DryRunOut(Out):
    """What the event would do; nothing was stored, armed or run."""

    machine_name: str
    entity_id: str
    trigger: str
    would_succeed: bool
    source_state: str | None
    target_state: str | None
    actions_that_would_execute: list[str]
    timers_that_would_arm: list[str]
    error_detail: ErrorDetailOut | None


class HistoryPageOut(Out):
    """A page of one entity's history, newest version first; pass ``next_cursor`` as
    ``before``."""

    items: list[HistoryOut]
    next_cursor: int | None
    limit: int


class TimelineItemOut(Out):
    """One moment of an entity's life: a committed transition, a pending event, an armed
    timer."""

    at: datetime
    kind: Literal["transition", "pending_event", "timer"]
    state: str | None = None
    trigger: str | None = None
    detail: dict[str, Any] = Field(default_factory=dict)


class TimelineOut(Out):
    """The newest history rows, the pending events and the armed timers, in time order."""

    machine_name: str
    entity_id: str
    state: str | None
    items: list[TimelineItemOut]


class ExportedHistoryIn(Strict):
    """One history row of an export document."""

    version: StrictInt = Field(ge=1, le=2**62)
    source_state: StrictStr | None = None
    target_state: StrictStr
    trigger: StrictStr | None = None
    event_id: StrictInt | None = Field(default=None, ge=1, le=2**62)
    origin: StrictStr = "direct"
    actions: list[StrictStr] = Field(default_factory=list)
    payload: dict[str, Any] | None = None
    machine_version: StrictInt | None = Field(default=None, ge=1, le=2**31 - 1)
    created_at: datetime


class ExportOut(Out):
    """An entity as a document (``GET …/export``; ``POST …/import`` takes it back)."""

    format: str
    machine_name: str
    entity_id: str
    state: str
    context: dict[str, Any]
    version: int
    entries: dict[str, int]
    created_at: datetime | None
    updated_at: datetime | None
    history: list[dict[str, Any]]


class ImportIn(Strict):
    """``POST …/import``: an export document (``entity_id`` of the path wins; ``format``,
    ``created_at`` and ``updated_at`` are ignored)."""

    format: StrictStr | None = None
    machine_name: MachineName
    entity_id: StrictStr | None = None
    state: StrictStr
    context: dict[str, Any] = Field(default_factory=dict)
    version: StrictInt | None = Field(default=None, ge=1, le=2**62)
    entries: dict[str, StrictBigInt] | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    history: list[ExportedHistoryIn] = Field(default_factory=list)


class PurgeIn(Strict):
    """``POST …/purge`` and ``…/archive``: which machine's entity."""

    machine_name: MachineName


class PurgeOut(Out):
    """What a purge deleted (rows per table)."""

    machine_name: str
    entity_id: str
    deleted: dict[str, int]


class ArchiveOut(PurgeOut):
    """The archived document (import it to restore the entity) and what was deleted."""

    document: ExportOut


class BulkCreateItemIn(Strict):
    """One entity of a bulk create."""

    entity_id: EntityId
    context: dict[str, Any] | None = None


class BulkCreateIn(Strict):
    """``POST /entities/bulk/create``: many entities of one machine, at its initial state."""

    machine_name: MachineName
    items: list[BulkCreateItemIn]


class BulkCreateItemOut(Out):
    """One item's outcome: created (with what its ``on_enter`` actions did), or why not."""

    entity_id: str | None
    created: bool
    state: str | None = None
    action_results: list[ActionResultOut] = Field(default_factory=list)
    error_detail: ErrorDetailOut | None = None


class BulkCreateOut(Out):
    """Every item's outcome, in request order."""

    items: list[BulkCreateItemOut]
    created: int
    failed: int


class BulkEventsIn(Strict):
    """``POST /entities/bulk/events``: one trigger (and payload) for many entities."""

    machine_name: MachineName
    trigger: TriggerName
    entity_ids: list[EntityId]
    context: dict[str, Any] | None = None


class BulkEventItemOut(Out):
    """One entity's outcome (``error_detail`` names a refusal before any evaluation too)."""

    entity_id: str | None
    success: bool
    source_state: str | None = None
    target_state: str | None = None
    version: int | None = None
    action_results: list[ActionResultOut] = Field(default_factory=list)
    error_detail: ErrorDetailOut | None = None


class BulkEventsOut(Out):
    """Every entity's outcome, in request order."""

    items: list[BulkEventItemOut]
    succeeded: int
    failed: int


class SummaryOut(Out):
    """Fleet KPIs now and within the window."""

    at: datetime
    window_seconds: float
    entities: int
    entities_by_machine: dict[str, int]
    transitions_in_window: int
    events_in_window: dict[str, int]
    events: dict[str, int]
    outbox: dict[str, int]
    duplicates: int
    backlog: dict[str, Any]


class ObservedTransitionPage(Out):
    """Transitions newest first; pass ``next_cursor`` as ``before``."""

    items: list[TransitionOut]
    next_cursor: int | None
    limit: int


class StateMetricOut(Out):
    """Entities in one state now, and entries into it within the window."""

    machine: str
    state: str
    entities: int
    entered_in_window: int


class EdgeMetricOut(Out):
    """How often one edge was taken within the window."""

    machine: str
    from_state: str | None = Field(alias="from")
    to_state: str = Field(alias="to")
    trigger: str | None
    count: int
    last_at: datetime | None


class StateMetricsOut(Out):
    """Per state and per edge."""

    at: datetime
    window_seconds: float
    states: list[StateMetricOut]
    edges: list[EdgeMetricOut]


class CatalogEntryOut(Out):
    """A built-in that a definition may name."""

    name: str
    description: str
    kind: str | None = None


class CatalogOut(Out):
    """Built-in guards, actions and sinks."""

    guards: list[CatalogEntryOut]
    actions: list[CatalogEntryOut]
    sinks: list[CatalogEntryOut]


class SettingOut(Out):
    """One setting (secrets and URL passwords as ``***``)."""

    name: str
    value: str


class SettingsOut(Out):
    """What this API process is configured with."""

    database: str
    broker: str
    scheduler: str
    redis: bool
    auth: dict[str, Any]
    settings: list[SettingOut]


__all__ = [
    "ArchiveOut",
    "BulkCreateIn",
    "BulkCreateItemIn",
    "BulkCreateItemOut",
    "BulkCreateOut",
    "BulkEventItemOut",
    "BulkEventsIn",
    "BulkEventsOut",
    "CatalogEntryOut",
    "CatalogOut",
    "DryRunOut",
    "EdgeMetricOut",
    "EntityCreateIn",
    "EntityEventIn",
    "EntitySnapshotOut",
    "EntityStateOut",
    "ErrorDetailOut",
    "EventOutcomeOut",
    "ExportOut",
    "ExportedHistoryIn",
    "HistoryPageOut",
    "ImportIn",
    "ObservedTransitionPage",
    "PurgeIn",
    "PurgeOut",
    "SettingOut",
    "SettingsOut",
    "StateMetricOut",
    "StateMetricsOut",
    "SummaryOut",
    "TimelineItemOut",
    "TimelineOut",
]
