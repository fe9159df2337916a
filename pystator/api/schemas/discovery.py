"""Request and response models of the discovery routes and the discovery settings routes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import Field

from pystator.api.params import INT_MAX, MachineName
from pystator.api.schemas.common import Out, Strict

#: Most entity ids a build, a preview or a draft may name (the stores' limit).
MAX_SCOPE_ENTITIES = 10_000
#: Most edges a manual selection may name.
MAX_SELECTED_EDGES = 10_000

Edge = Annotated[list[str], Field(min_length=2, max_length=2, description="[source, destination]")]


class ObservationIn(Strict):
    """One observation (checked field by field when it is recorded; ``observed_at``: ISO 8601
    or seconds since the epoch, missing means now)."""

    entity_id: Any = None
    machine_name: Any = None
    state: Any = None
    observed_at: Any = None
    source: Any = None
    source_event_id: Any = None
    trigger: Any = None
    previous_state: Any = None


class ObservationBatchIn(Strict):
    """A batch: ready ``observations`` (objects shaped like one observation; ``machine_name``
    fills in theirs), or raw ``records`` that ``machine_name``'s ``when:`` rules classify
    (``event_id_field`` names the field that makes a re-sent record a no-op)."""

    machine_name: MachineName | None = None
    observations: list[Any] | None = None
    records: list[Any] | None = None
    event_id_field: str | None = None


class IngestErrorOut(Out):
    """A record that was not recorded: its position in the batch and why."""

    index: int
    reason: str


class IngestOut(Out):
    """What a batch came to: ``total`` read, ``classified`` (got a state), ``skipped`` (no
    state), ``errors`` (malformed, the first reasons in ``error_details``), ``accepted``
    (stored) and ``duplicates`` (stored before)."""

    total: int
    accepted: int
    classified: int
    skipped: int
    errors: int
    duplicates: int
    error_details: list[IngestErrorOut]


class ScopeIn(Strict):
    """What a preview or a build reads and keeps."""

    machine_name: MachineName
    source: str = Field(
        "observations", description="observations (the discovery store) or history (the fleet's)"
    )
    entity_ids: list[str] | None = Field(None, max_length=MAX_SCOPE_ENTITIES)
    min_edge_count: int | None = Field(None, ge=1, le=INT_MAX)
    min_confidence: float | None = Field(None, ge=0.0, le=1.0)
    since: datetime | None = Field(None, description="history only: from this time")
    until: datetime | None = Field(None, description="history only: before this time")
    edge_selection: list[Edge] | None = Field(
        None, max_length=MAX_SELECTED_EDGES, description="manual mode: keep exactly these edges"
    )


class EdgeOut(Out):
    """An observed edge with its count and confidence, kept or dropped (with the reason)."""

    source_state: str
    destination_state: str
    count: int
    confidence: float
    triggers: dict[str, int] = {}
    trigger: str | None = None
    trigger_derived: bool = False
    kept: bool = True
    reason: str | None = None


class PreviewOut(Out):
    """The edges a build would keep and drop (nothing stored)."""

    machine_name: str
    kept: int
    dropped: int
    edges: list[EdgeOut]


class CandidateSummaryOut(Out):
    """A built candidate without its definition and edges."""

    machine_name: str
    version: int
    draft_id: int | None
    created_by: str
    created_at: datetime
    thresholds: dict[str, Any]
    mode: str
    source: str
    observation_count: int
    entity_count: int
    late_count: int
    repeat_count: int
    initial_states: dict[str, int]
    initial_state: str | None
    terminal_states: list[str]
    never_left: list[str]
    trigger_names: str
    kept_edges: int
    dropped_edges: int


class CandidateOut(CandidateSummaryOut):
    """A built candidate: ``config`` is an ordinary machine definition; ``edges`` every
    observed edge, kept and dropped."""

    config: dict[str, Any]
    edges: list[EdgeOut]


class DraftOut(Out):
    """A saved discovery scope of one machine."""

    id: int
    machine_name: str
    title: str
    selected_entity_ids: list[str]
    min_edge_count: int
    min_confidence: float
    mode: str
    manual_edge_selection: list[list[str]]
    last_built_version: int | None
    created_at: datetime
    updated_at: datetime


class ListingOut(Out):
    """A machine's built candidates (newest first) and its drafts."""

    machine_name: str
    built_candidates: list[CandidateSummaryOut]
    drafts: list[DraftOut]


class DraftIn(Strict):
    """A new draft (thresholds default to the configured ones)."""

    title: str = Field("", max_length=200)
    entity_ids: list[str] = Field(default_factory=list, max_length=MAX_SCOPE_ENTITIES)
    min_edge_count: int | None = Field(None, ge=1, le=INT_MAX)
    min_confidence: float | None = Field(None, ge=0.0, le=1.0)
    mode: str = Field("inference", description="inference or manual")
    manual_edge_selection: list[Edge] = Field(default_factory=list, max_length=MAX_SELECTED_EDGES)


class DraftPatchIn(Strict):
    """The parts of a draft to change (the others stay)."""

    title: str | None = Field(None, max_length=200)
    entity_ids: list[str] | None = Field(None, max_length=MAX_SCOPE_ENTITIES)
    min_edge_count: int | None = Field(None, ge=1, le=INT_MAX)
    min_confidence: float | None = Field(None, ge=0.0, le=1.0)
    mode: str | None = None
    manual_edge_selection: list[Edge] | None = Field(None, max_length=MAX_SELECTED_EDGES)


class DiffEdgeOut(Out):
    """An edge of a comparison."""

    source_state: str
    destination_state: str
    count: int = 0
    confidence: float = 0.0


class DiffOut(Out):
    """A candidate against the active machine: edges both have, observed edges the machine does
    not allow (``unexpected``; ``unexpected_rare``: dropped by the thresholds) and edges it
    allows that were never observed (``unused``)."""

    machine_name: str
    candidate_version: int
    active_version: int | None
    common: list[DiffEdgeOut]
    unexpected: list[DiffEdgeOut]
    unexpected_rare: list[DiffEdgeOut]
    unused: list[DiffEdgeOut]


class RegisteredOut(Out):
    """A candidate stored as a version of its machine (never the current one)."""

    machine_name: str
    candidate_version: int
    registry_version: int
    created: bool
    current_version: int


class DiscoveryConfigOut(Out):
    """Where discovery keeps its data and how it keeps edges (passwords masked)."""

    database_url: str
    dedicated_database: bool
    backend: str
    shadow_enabled: bool
    min_edge_count: int
    min_confidence: float


class DatabaseTestIn(Strict):
    """The database to check (default: the configured discovery database)."""

    database_url: str | None = Field(None, max_length=2000)


class DatabaseTestOut(Out):
    """Whether discovery can use the database, and why not."""

    ok: bool
    database_url: str
    backend: str
    migrated: bool | None
    detail: str


__all__ = [
    "CandidateOut",
    "CandidateSummaryOut",
    "DatabaseTestIn",
    "DatabaseTestOut",
    "DiffOut",
    "DiscoveryConfigOut",
    "DraftIn",
    "DraftOut",
    "DraftPatchIn",
    "EdgeOut",
    "IngestOut",
    "ListingOut",
    "ObservationBatchIn",
    "ObservationIn",
    "PreviewOut",
    "RegisteredOut",
    "ScopeIn",
]
