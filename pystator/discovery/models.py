"""The data of discovery: observations, thresholds, inferred edges, candidates, drafts, results.

All frozen values. An :class:`ObservedStateEvent` checks itself when it is built (entity id,
names, an aware timestamp), so a bad one never reaches a store.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from types import MappingProxyType
from typing import Any

from pystator.fsm_core.clock import as_utc
from pystator.fsm_core.errors import DiscoveryError, InvalidObservationError
from pystator.fsm_core.naming import describe_name_problem
from pystator.stores.sql.schema import ENTITY_ID_LENGTH, SOURCE_EVENT_ID_LENGTH, SOURCE_LENGTH

#: An edge needs at least this many observations to be kept (``PYSTATOR_DISCOVERY_MIN_EDGE_COUNT``).
DEFAULT_MIN_EDGE_COUNT = 2
#: ... and at least this share of its source state's exits (``PYSTATOR_DISCOVERY_MIN_CONFIDENCE``).
#: Random jumps among *n* states give each wrong edge about ``noise / (n - 1)`` of its source's
#: exits (0.26 % for 5 % noise over 20 states), far below a real branch of a machine.
DEFAULT_MIN_CONFIDENCE = 0.05
DEFAULT_SOURCE = "api"
_EMPTY: Mapping[str, int] = MappingProxyType({})


class DraftMode(str, Enum):
    """How a draft picks the candidate's edges: by thresholds, or exactly the selected ones."""

    INFERENCE = "inference"
    MANUAL = "manual"


@dataclass(frozen=True, slots=True, kw_only=True)
class InferenceThresholds:
    """Which inferred edges a candidate keeps: at least ``min_edge_count`` observations and at
    least ``min_confidence`` (0 to 1) of the source state's exits."""

    min_edge_count: int = DEFAULT_MIN_EDGE_COUNT
    min_confidence: float = DEFAULT_MIN_CONFIDENCE

    def __post_init__(self) -> None:
        count = self.min_edge_count
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise DiscoveryError(f"min_edge_count must be an integer >= 1, got {count!r}")
        confidence = self.min_confidence
        if (
            isinstance(confidence, bool)
            or not isinstance(confidence, int | float)
            or not 0.0 <= confidence <= 1.0
        ):
            raise DiscoveryError(f"min_confidence must be a number from 0 to 1, got {confidence!r}")

    def to_dict(self) -> dict[str, Any]:
        """``{"min_edge_count": …, "min_confidence": …}``."""
        return {"min_edge_count": self.min_edge_count, "min_confidence": self.min_confidence}


@dataclass(frozen=True, slots=True, kw_only=True)
class ObservedStateEvent:
    """An entity seen in ``state`` at ``observed_at`` (by ``source``).

    ``trigger`` is the event that brought it there, when the source knows it (the candidate
    then uses that name); ``previous_state`` the state it left, when the source knows it (the
    fleet's history does); ``source_event_id`` makes a re-sent observation a no-op.
    ``observed_at`` is kept in UTC (a naive one is taken as UTC). :class:`InvalidObservationError` when a value is unusable.
    """

    entity_id: str
    machine_name: str
    state: str
    observed_at: datetime
    source: str = DEFAULT_SOURCE
    source_event_id: str | None = None
    trigger: str | None = None
    previous_state: str | None = None

    def __post_init__(self) -> None:
        _name(self.machine_name, "machine name")
        _name(self.state, "state name")
        if self.trigger is not None:
            _name(self.trigger, "trigger name")
        if self.previous_state is not None:
            _name(self.previous_state, "previous state name")
        _text(self.entity_id, "entity_id", ENTITY_ID_LENGTH)
        _text(self.source, "source", SOURCE_LENGTH)
        if self.source_event_id is not None:
            _text(self.source_event_id, "source_event_id", SOURCE_EVENT_ID_LENGTH)
        if not isinstance(self.observed_at, datetime):
            raise InvalidObservationError(
                f"observed_at must be a datetime, got {type(self.observed_at).__name__}"
            )
        if self.observed_at.tzinfo is not UTC:  # stored and ordered as UTC everywhere
            object.__setattr__(self, "observed_at", as_utc(self.observed_at))

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form (``observed_at`` in ISO 8601)."""
        return {
            "entity_id": self.entity_id,
            "machine_name": self.machine_name,
            "state": self.state,
            "observed_at": self.observed_at.isoformat(),
            "source": self.source,
            "source_event_id": self.source_event_id,
            "trigger": self.trigger,
            "previous_state": self.previous_state,
        }


def _name(value: Any, what: str) -> None:
    problem = describe_name_problem(value, what)
    if problem is not None:
        raise InvalidObservationError(problem)


def _text(value: Any, what: str, limit: int) -> None:
    if not isinstance(value, str) or not value.strip() or len(value) > limit or "\x00" in value:
        raise InvalidObservationError(
            f"{what} must be a non-blank string of at most {limit} characters without NUL, "
            f"got {_short(value)}"
        )


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


@dataclass(frozen=True, slots=True, kw_only=True)
class InferredEdge:
    """``source_state → destination_state`` seen ``count`` times.

    ``confidence`` is ``count / (exits observed from source_state)``: the share of the source
    state's observed exits that went here (the edges of one source add up to 1). ``triggers``
    counts the trigger names the source gave; ``trigger`` is the name the candidate uses
    (``trigger_derived``: made up as ``to_<destination>`` because none was observed). ``kept``
    says whether the candidate has it; ``reason`` why it was dropped otherwise.
    """

    source_state: str
    destination_state: str
    count: int
    confidence: float
    triggers: Mapping[str, int] = field(default_factory=lambda: _EMPTY)
    trigger: str | None = None
    trigger_derived: bool = False
    kept: bool = True
    reason: str | None = None

    @property
    def pair(self) -> tuple[str, str]:
        """``(source_state, destination_state)``."""
        return (self.source_state, self.destination_state)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return {
            "source_state": self.source_state,
            "destination_state": self.destination_state,
            "count": self.count,
            "confidence": self.confidence,
            "triggers": dict(self.triggers),
            "trigger": self.trigger,
            "trigger_derived": self.trigger_derived,
            "kept": self.kept,
            "reason": self.reason,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> InferredEdge:
        """The inverse of :meth:`to_dict`."""
        return cls(
            source_state=str(data["source_state"]),
            destination_state=str(data["destination_state"]),
            count=int(data["count"]),
            confidence=float(data["confidence"]),
            triggers={str(k): int(v) for k, v in (data.get("triggers") or {}).items()},
            trigger=data.get("trigger"),
            trigger_derived=bool(data.get("trigger_derived", False)),
            kept=bool(data.get("kept", True)),
            reason=data.get("reason"),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class BuiltDiscoveryCandidate:
    """A candidate machine inferred from observations.

    ``config`` is an ordinary machine definition (it validates, lints and draws like any other);
    ``edges`` holds every observed edge, kept and dropped, with counts and confidence. ``version``
    numbers the candidates of a machine (0 until it is stored). ``initial_states`` counts the
    entities first seen in each state; ``terminal_states`` are the candidate's states with no
    kept exit (``never_left``: those no entity was ever seen leaving). ``trigger_names`` says
    where the candidate's trigger names come from: ``observed``, ``derived`` or ``mixed``.
    """

    machine_name: str
    config: Mapping[str, Any]
    edges: tuple[InferredEdge, ...]
    thresholds: InferenceThresholds
    mode: DraftMode = DraftMode.INFERENCE
    version: int = 0
    source: str = "observations"
    observation_count: int = 0
    entity_count: int = 0
    late_count: int = 0
    repeat_count: int = 0
    initial_states: Mapping[str, int] = field(default_factory=lambda: _EMPTY)
    initial_state: str | None = None
    terminal_states: tuple[str, ...] = ()
    never_left: tuple[str, ...] = ()
    trigger_names: str = "derived"
    draft_id: int | None = None
    created_by: str = ""
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def kept_edges(self) -> tuple[InferredEdge, ...]:
        """The edges the candidate has."""
        return tuple(e for e in self.edges if e.kept)

    @property
    def dropped_edges(self) -> tuple[InferredEdge, ...]:
        """The observed edges the thresholds (or the manual selection) left out."""
        return tuple(e for e in self.edges if not e.kept)

    def summary(self) -> dict[str, Any]:
        """Everything but the config and the edges, JSON-friendly (stored beside them)."""
        return {
            "thresholds": self.thresholds.to_dict(),
            "mode": self.mode.value,
            "source": self.source,
            "observation_count": self.observation_count,
            "entity_count": self.entity_count,
            "late_count": self.late_count,
            "repeat_count": self.repeat_count,
            "initial_states": dict(self.initial_states),
            "initial_state": self.initial_state,
            "terminal_states": list(self.terminal_states),
            "never_left": list(self.never_left),
            "trigger_names": self.trigger_names,
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form: the summary plus ``config``, ``edges`` and identity."""
        return {
            "machine_name": self.machine_name,
            "version": self.version,
            "draft_id": self.draft_id,
            "created_by": self.created_by,
            "created_at": self.created_at.isoformat(),
            **self.summary(),
            "config": dict(self.config),
            "edges": [e.to_dict() for e in self.edges],
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class DiscoveryDraft:
    """A saved discovery scope of one machine: which entities, which thresholds, and (mode
    ``manual``) exactly which edges a build keeps. ``id`` is 0 until it is stored."""

    machine_name: str
    id: int = 0
    title: str = ""
    selected_entity_ids: tuple[str, ...] = ()
    thresholds: InferenceThresholds = field(default_factory=InferenceThresholds)
    mode: DraftMode = DraftMode.INFERENCE
    manual_edge_selection: tuple[tuple[str, str], ...] = ()
    last_built_version: int | None = None
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    updated_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return {
            "id": self.id,
            "machine_name": self.machine_name,
            "title": self.title,
            "selected_entity_ids": list(self.selected_entity_ids),
            **self.thresholds.to_dict(),
            "mode": self.mode.value,
            "manual_edge_selection": [list(pair) for pair in self.manual_edge_selection],
            "last_built_version": self.last_built_version,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class ShadowDiff:
    """One event as the active machine and a candidate would decide it (the shape only: shadow
    evaluation itself is not part of discovery). ``agrees`` when both reach the same state."""

    machine_name: str
    entity_id: str
    candidate_version: int
    source_state: str
    trigger: str
    active_target: str | None
    candidate_target: str | None
    active_version: int | None = None
    observed_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def agrees(self) -> bool:
        """True when both machines reach the same state (or both refuse the event)."""
        return self.active_target == self.candidate_target


@dataclass(frozen=True, slots=True, kw_only=True)
class ClassificationResult:
    """What :meth:`StateClassifier.classify` made of one record: ``state`` (None: no rule
    matched and there is no default), ``matched`` (False when the default was used or nothing
    matched), and the ``record`` itself."""

    state: str | None
    matched: bool
    record: Mapping[str, Any]


@dataclass(frozen=True, slots=True, kw_only=True)
class IngestError:
    """A record of a batch that was not ingested: its position and why."""

    index: int
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class IngestionResult:
    """Counts of one :meth:`DataIngester.ingest_batch`.

    ``total`` records were read: ``classified`` got a state, ``skipped`` got none (no rule and
    no default), ``errors`` were malformed (``error_details`` gives the first reasons).
    Of the classified ones ``accepted`` were stored and ``duplicates`` were already stored
    (same ``source_event_id``).
    """

    total: int = 0
    accepted: int = 0
    classified: int = 0
    skipped: int = 0
    errors: int = 0
    duplicates: int = 0
    error_details: tuple[IngestError, ...] = ()

    def __repr__(self) -> str:
        return (
            f"IngestionResult(total={self.total}, accepted={self.accepted}, "
            f"classified={self.classified}, skipped={self.skipped}, errors={self.errors})"
        )


__all__ = [
    "DEFAULT_MIN_CONFIDENCE",
    "DEFAULT_MIN_EDGE_COUNT",
    "BuiltDiscoveryCandidate",
    "ClassificationResult",
    "DiscoveryDraft",
    "DraftMode",
    "InferenceThresholds",
    "InferredEdge",
    "IngestError",
    "IngestionResult",
    "ObservedStateEvent",
    "ShadowDiff",
]
