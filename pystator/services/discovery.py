"""Discovery for the API, the CLI and the dashboard: ingest, preview and build, compare.

One :class:`DiscoveryDesk` per process opens the discovery store on first use
(``PYSTATOR_DISCOVERY_DATABASE_URL``, else the main database) and hands out its
:class:`~pystator.discovery.InferenceEngine`. Observations arrive as ready observations
(:func:`ingest_observations`) or as raw records a machine's ``when:`` rules classify
(:func:`ingest_records`); a malformed one is counted with its reason and never stops the batch.
:func:`compare` sets a candidate against the active machine: the edges both have, the edges it
allows that nobody used, and the observed edges it does not allow.
"""

from __future__ import annotations

import csv
import json
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from pystator.config.settings import Settings, mask
from pystator.discovery import (
    BuiltDiscoveryCandidate,
    DataIngester,
    DiscoveryDraft,
    InferenceEngine,
    InferenceThresholds,
    InferredEdge,
    IngestError,
    IngestionResult,
    ObservationSource,
    ObservedStateEvent,
    StateClassifier,
    StoredObservations,
    TransitionHistorySource,
)
from pystator.discovery.classification import MAX_ERROR_DETAILS, time_of
from pystator.discovery.stores import MEMORY_URL
from pystator.fsm_core.clock import Clock, utc_now
from pystator.fsm_core.errors import (
    DiscoveryError,
    InvalidObservationError,
    NotFoundError,
    StoreError,
)
from pystator.fsm_core.machine import StateMachine
from pystator.registry import versions
from pystator.registry.machines import load_registry
from pystator.stores.sql import migrator
from pystator.stores.sql.engine import create_engine_from_url, is_sqlite, normalize_url

#: The sources a build reads: the discovery store's observations, or the fleet's history.
SOURCES = ("observations", "history")
#: The fields an observation may carry.
OBSERVATION_FIELDS = frozenset(
    {
        "entity_id",
        "machine_name",
        "state",
        "observed_at",
        "source",
        "source_event_id",
        "trigger",
        "previous_state",
    }
)


class DiscoveryDesk:
    """The discovery store of one process, opened on first use (thread safe) and closed with
    the process."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._engine: InferenceEngine | None = None
        self._lock = threading.Lock()

    @property
    def engine(self) -> InferenceEngine:
        """The inference engine on the configured store, with the configured thresholds."""
        with self._lock:
            if self._engine is None:
                self._engine = InferenceEngine.from_app_config(settings=self.settings)
            return self._engine

    def close(self) -> None:
        """Release the store's connections (if it was opened)."""
        with self._lock:
            if self._engine is not None:
                close = getattr(self._engine.observations, "close", None)
                if close is not None:
                    close()
                self._engine = None


# --- ingestion ----------------------------------------------------------------------------------


def observation_of(
    item: Any, *, machine_name: str | None = None, now: datetime | None = None
) -> ObservedStateEvent:
    """An observation from a JSON object (``machine_name`` when the object names none;
    ``observed_at``: ISO 8601 text or seconds since the epoch, missing means ``now``);
    :class:`InvalidObservationError` naming what is wrong."""
    if not isinstance(item, Mapping):
        raise InvalidObservationError(f"an observation is a JSON object, got {type(item).__name__}")
    unknown = sorted(str(k) for k in item if k not in OBSERVATION_FIELDS)
    if unknown:
        raise InvalidObservationError(f"unknown fields: {', '.join(unknown)[:200]}")
    machine = item.get("machine_name", machine_name)
    if machine is None:
        raise InvalidObservationError("machine_name is missing")
    if machine_name is not None and machine != machine_name:
        raise InvalidObservationError(
            f"machine_name {str(machine)[:60]!r} differs from the batch's {machine_name!r}"
        )
    for name in ("entity_id", "state"):
        if item.get(name) is None:
            raise InvalidObservationError(f"{name} is missing")
    return ObservedStateEvent(
        entity_id=_text(item["entity_id"]),
        machine_name=machine,
        state=item["state"],
        observed_at=parse_time(item.get("observed_at"), now or utc_now()),
        source=item.get("source") or "api",
        source_event_id=_optional_text(item.get("source_event_id")),
        trigger=item.get("trigger"),
        previous_state=item.get("previous_state"),
    )


def parse_time(value: Any, default: datetime) -> datetime:
    """A time from ISO 8601 text (naive: UTC) or seconds since the epoch; ``default`` for
    None."""
    if value is None:
        return default
    return time_of(value, "observed_at")


def _text(value: Any) -> Any:
    """Integers are accepted as ids (``42`` is ``"42"``); anything else is checked as given."""
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


def _optional_text(value: Any) -> Any:
    return None if value is None else _text(value)


def ingest_observations(
    engine: InferenceEngine,
    items: Sequence[Any],
    *,
    machine_name: str | None = None,
    clock: Clock = utc_now,
) -> IngestionResult:
    """Record ready observations (of any machines, or of ``machine_name`` only); malformed
    ones are counted as errors with their position and reason, the rest are stored (one write
    per machine, in the order given)."""
    now = clock()
    by_machine: dict[str, list[ObservedStateEvent]] = {}
    errors: list[IngestError] = []
    error_count = 0
    for index, item in enumerate(items):
        try:
            event = observation_of(item, machine_name=machine_name, now=now)
        except InvalidObservationError as exc:
            error_count += 1
            if len(errors) < MAX_ERROR_DETAILS:
                errors.append(IngestError(index=index, reason=exc.message))
            continue
        by_machine.setdefault(event.machine_name, []).append(event)
    valid = sum(len(events) for events in by_machine.values())
    accepted = sum(
        engine.record_observations(machine, events) for machine, events in by_machine.items()
    )
    return IngestionResult(
        total=len(items),
        accepted=accepted,
        classified=valid,
        errors=error_count,
        duplicates=valid - accepted,
        error_details=tuple(errors),
    )


def ingest_records(
    engine: InferenceEngine,
    machine: StateMachine,
    records: Sequence[Any],
    *,
    event_id_field: str | None = None,
) -> IngestionResult:
    """Classify raw records with ``machine``'s ``when:`` rules and record them as observations
    (see :class:`~pystator.discovery.DataIngester`)."""
    ingester = DataIngester(
        StateClassifier.from_machine(machine), engine, machine.name, event_id_field=event_id_field
    )
    return ingester.ingest_batch(records)


def result_to_dict(result: IngestionResult) -> dict[str, Any]:
    """The counts of an ingestion, with the first reasons of its errors."""
    return {
        "total": result.total,
        "accepted": result.accepted,
        "classified": result.classified,
        "skipped": result.skipped,
        "errors": result.errors,
        "duplicates": result.duplicates,
        "error_details": [{"index": e.index, "reason": e.reason} for e in result.error_details],
    }


# --- files --------------------------------------------------------------------------------------

#: File formats ``pystator discover ingest`` reads.
FILE_FORMATS = ("jsonl", "csv")
#: Lines of a file recorded per store write.
FILE_CHUNK = 1000


def file_format(path: Path, given: str | None = None) -> str:
    """``given``, else ``csv`` for a ``.csv`` file and ``jsonl`` for anything else."""
    if given is not None:
        if given not in FILE_FORMATS:
            raise DiscoveryError(f"format must be one of {', '.join(FILE_FORMATS)}, got {given!r}")
        return given
    return "csv" if path.suffix.lower() == ".csv" else "jsonl"


def _cell(value: str | None) -> Any:
    """A CSV cell: empty is missing, numbers are numbers, the rest text."""
    if value is None or value == "":
        return None
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            continue
    return value


class _Unreadable:
    """A line of a file that is not a record (counted as an error with ``reason``)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason


def read_items(path: Path, kind: str) -> Iterator[Any]:
    """The items of a JSONL or CSV file, one per line (an :class:`_Unreadable` for a line that
    cannot be read); blank JSONL lines are skipped."""
    with path.open(newline="", encoding="utf-8", errors="replace") as handle:
        if kind == "csv":
            for row in csv.DictReader(handle):
                if None in row:
                    yield _Unreadable("the line has more cells than the header")
                    continue
                yield {k: v for k, v in ((k, _cell(v)) for k, v in row.items()) if v is not None}
            return
        for line in handle:
            if not line.strip():
                continue
            try:
                yield json.loads(line)
            except (json.JSONDecodeError, RecursionError) as exc:
                yield _Unreadable(f"not JSON: {str(exc)[:100]}")


def ingest_file(
    engine: InferenceEngine,
    path: Path,
    *,
    kind: str | None = None,
    machine_name: str | None = None,
    classify_with: StateMachine | None = None,
    event_id_field: str | None = None,
    chunk: int = FILE_CHUNK,
) -> IngestionResult:
    """Record every line of a JSONL or CSV file: observations (of ``machine_name`` when given),
    or raw records ``classify_with``'s ``when:`` rules classify. Bad lines are counted with
    their number (1-based, a CSV's header is line 1) and never stop the file."""
    kind = file_format(path, kind)
    first_line = 2 if kind == "csv" else 1
    totals = dict.fromkeys(
        ("total", "accepted", "classified", "skipped", "errors", "duplicates"), 0
    )
    errors: list[IngestError] = []
    batch: list[Any] = []
    numbers: list[int] = []

    def flush() -> None:
        if not batch:
            return
        items = [None if isinstance(i, _Unreadable) else i for i in batch]
        if classify_with is not None:
            result = ingest_records(engine, classify_with, items, event_id_field=event_id_field)
        else:
            result = ingest_observations(engine, items, machine_name=machine_name)
        for name in totals:
            totals[name] += getattr(result, name)
        reasons = {e.index: e.reason for e in result.error_details}
        for position, item in enumerate(batch):
            reason = item.reason if isinstance(item, _Unreadable) else reasons.get(position)
            if reason is not None and len(errors) < MAX_ERROR_DETAILS:
                errors.append(IngestError(index=numbers[position], reason=reason))
        batch.clear()
        numbers.clear()

    for number, item in enumerate(read_items(path, kind), start=first_line):
        batch.append(item)
        numbers.append(number)
        if len(batch) >= chunk:
            flush()
    flush()
    return IngestionResult(**totals, error_details=tuple(errors))


def active_machine(settings: Settings, engine: Engine, name: str) -> StateMachine | None:
    """The machine ``name`` as workers apply it: the registry's current version, else the
    definition of that name in ``PYSTATOR_MACHINES``; None when there is neither."""
    try:
        return versions.show_machine(engine, name).machine()
    except NotFoundError:
        pass
    return load_registry(settings.machine_files).find(name)


# --- preview and build --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class BuildScope:
    """What a preview or a build reads: the store's observations of ``machine_name`` (of
    ``entity_ids`` only, when given), or (``source="history"``) the fleet's applied transitions
    in ``[since, until)``; ``thresholds`` default to the configured ones; ``edge_selection``
    (manual mode) keeps exactly those edges."""

    machine_name: str
    source: str = "observations"
    entity_ids: tuple[str, ...] | None = None
    thresholds: InferenceThresholds | None = None
    since: datetime | None = None
    until: datetime | None = None
    edge_selection: tuple[tuple[str, str], ...] | None = None

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise DiscoveryError(
                f"source must be one of {', '.join(SOURCES)}, got {str(self.source)[:40]!r}"
            )
        if self.since and self.until and self.since >= self.until:
            raise DiscoveryError("since must be before until")


@contextmanager
def scope_source(
    engine: InferenceEngine,
    scope: BuildScope,
    *,
    fleet_url: str,
    initial_state: str | None = None,
) -> Iterator[ObservationSource]:
    """The source of ``scope``: the fleet's history is read in place on a plain engine of its
    own (``fleet_url``), disposed afterwards."""
    if scope.source == "observations":
        if scope.since is not None or scope.until is not None:
            raise DiscoveryError("since and until apply to source 'history' only")
        yield StoredObservations(engine.observations, scope.machine_name, scope.entity_ids)
        return
    reader = create_engine_from_url(fleet_url)
    try:
        yield TransitionHistorySource(
            reader,
            scope.machine_name,
            since=scope.since,
            until=scope.until,
            entity_ids=scope.entity_ids,
            initial_state=initial_state,
        )
    finally:
        reader.dispose()


def preview(
    engine: InferenceEngine,
    scope: BuildScope,
    *,
    fleet_url: str,
    initial_state: str | None = None,
) -> list[InferredEdge]:
    """Every edge a build of ``scope`` would see, kept or dropped; nothing is stored."""
    with scope_source(engine, scope, fleet_url=fleet_url, initial_state=initial_state) as source:
        return engine.infer_source(
            source, thresholds=scope.thresholds, edge_selection=scope.edge_selection
        )


def build(
    engine: InferenceEngine,
    scope: BuildScope,
    *,
    fleet_url: str,
    initial_state: str | None = None,
    created_by: str = "",
) -> BuiltDiscoveryCandidate:
    """Build ``scope``'s candidate and store it as the machine's next candidate version (it
    never becomes the active machine by being built)."""
    with scope_source(engine, scope, fleet_url=fleet_url, initial_state=initial_state) as source:
        return engine.build_candidate_from(
            source,
            thresholds=scope.thresholds,
            edge_selection=scope.edge_selection,
            created_by=created_by,
        )


def candidate_summary(candidate: BuiltDiscoveryCandidate) -> dict[str, Any]:
    """A candidate without its definition and edges: identity, counts and what was kept."""
    return {
        "machine_name": candidate.machine_name,
        "version": candidate.version,
        "draft_id": candidate.draft_id,
        "created_by": candidate.created_by,
        "created_at": candidate.created_at.isoformat(),
        **candidate.summary(),
        "kept_edges": len(candidate.kept_edges),
        "dropped_edges": len(candidate.dropped_edges),
    }


def listing(engine: InferenceEngine, machine_name: str) -> dict[str, Any]:
    """A machine's built candidates (newest first, summaries) and its drafts."""
    return {
        "machine_name": machine_name,
        "built_candidates": [candidate_summary(c) for c in engine.list_candidates(machine_name)],
        "drafts": [d.to_dict() for d in engine.list_drafts(machine_name)],
    }


def machine_draft(engine: InferenceEngine, machine_name: str, draft_id: int) -> DiscoveryDraft:
    """Draft ``draft_id`` of ``machine_name``; :class:`NotFoundError` when it is another
    machine's or does not exist."""
    draft = engine.get_draft(draft_id)
    if draft.machine_name != machine_name:
        raise NotFoundError(
            f"machine {machine_name!r} has no discovery draft {draft_id}",
            details={"draft_id": draft_id, "machine": machine_name},
        )
    return draft


# --- the candidate against the active machine ---------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class EdgeDiff:
    """A candidate set against the machine it was inferred for.

    ``common``: kept candidate edges the machine allows; ``unexpected``: kept candidate edges
    it does not allow; ``unexpected_rare``: observed edges it does not allow that the thresholds
    dropped; ``unused``: edges the machine allows that were never observed at all.
    """

    machine_name: str
    candidate_version: int
    active_version: int | None
    common: tuple[InferredEdge, ...]
    unexpected: tuple[InferredEdge, ...]
    unexpected_rare: tuple[InferredEdge, ...]
    unused: tuple[tuple[str, str], ...]

    @property
    def clean(self) -> bool:
        """True when the candidate and the machine have the same edges."""
        return not self.unexpected and not self.unused

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return {
            "machine_name": self.machine_name,
            "candidate_version": self.candidate_version,
            "active_version": self.active_version,
            "common": [_edge(e) for e in self.common],
            "unexpected": [_edge(e) for e in self.unexpected],
            "unexpected_rare": [_edge(e) for e in self.unexpected_rare],
            "unused": [{"source_state": s, "destination_state": d} for s, d in self.unused],
        }


def _edge(edge: InferredEdge) -> dict[str, Any]:
    return {
        "source_state": edge.source_state,
        "destination_state": edge.destination_state,
        "count": edge.count,
        "confidence": edge.confidence,
    }


def allowed_edges(machine: StateMachine) -> set[tuple[str, str]]:
    """Every ``(source, destination)`` pair a transition of ``machine`` allows (a transition
    from a compound state allows it from each state inside it)."""
    children: dict[str, list[str]] = {}
    for state in machine.definition.states:
        if state.parent is not None:
            children.setdefault(state.parent, []).append(state.name)

    def inside(name: str) -> Iterator[str]:
        yield name
        for child in children.get(name, ()):
            yield from inside(child)

    pairs: set[tuple[str, str]] = set()
    for transition in machine.definition.transitions:
        for source in transition.sources:
            for name in inside(source):
                pairs.add((name, transition.dest))
    return pairs


def compare(candidate: BuiltDiscoveryCandidate, machine: StateMachine) -> EdgeDiff:
    """``candidate`` set against ``machine`` (see :class:`EdgeDiff`)."""
    allowed = allowed_edges(machine)
    observed = {e.pair for e in candidate.edges}
    return EdgeDiff(
        machine_name=candidate.machine_name,
        candidate_version=candidate.version,
        active_version=machine.registry_version,
        common=tuple(e for e in candidate.kept_edges if e.pair in allowed),
        unexpected=tuple(e for e in candidate.kept_edges if e.pair not in allowed),
        unexpected_rare=tuple(e for e in candidate.dropped_edges if e.pair not in allowed),
        unused=tuple(sorted(allowed - observed)),
    )


# --- settings -----------------------------------------------------------------------------------


def discovery_config(settings: Settings) -> dict[str, Any]:
    """Where discovery keeps its data and how it keeps edges (no secret in it)."""
    url = settings.discovery_url
    return {
        "database_url": mask("discovery_database_url", url),
        "dedicated_database": settings.discovery_database_url is not None,
        "backend": backend_of(url),
        "shadow_enabled": settings.discovery_shadow_enabled,
        "min_edge_count": settings.discovery_min_edge_count,
        "min_confidence": settings.discovery_min_confidence,
    }


def backend_of(url: str) -> str:
    """``memory``, ``sqlite``, ``postgresql`` … (``unknown`` for text that is not a URL)."""
    if _is_memory(url):
        return "memory"
    try:
        return normalize_url(url).get_backend_name()
    except (sa.exc.ArgumentError, ValueError):
        return "unknown"


def _is_memory(url: str) -> bool:
    return url.strip().rstrip("/") in (MEMORY_URL.rstrip("/"), "memory:")


def check_database(url: str) -> dict[str, Any]:
    """Can discovery use the database at ``url``? ``ok`` with the backend and whether its
    schema is at the newest migration, or the reason it cannot (never raises for a bad URL or
    an unreachable server; a SQLite file is never created by the check)."""
    shown = mask("discovery_database_url", url)
    backend = backend_of(url)
    report: dict[str, Any] = {"database_url": shown, "backend": backend}
    if backend == "memory":
        return {**report, "ok": True, "migrated": True, "detail": "in memory (one process)"}
    if backend not in ("sqlite", "postgresql"):
        return {**report, "ok": False, "migrated": None, "detail": "unsupported backend"}
    if is_sqlite(url):
        path = normalize_url(url).database
        if path and path != ":memory:" and not Path(path).exists():
            return {**report, "ok": False, "migrated": None, "detail": "no such SQLite file"}
    try:
        revision = migrator.current(url)
    except StoreError as exc:
        return {**report, "ok": False, "migrated": None, "detail": _first_line(exc.message)}
    head = migrator.head()
    migrated = revision == head
    detail = (
        "reachable, at the newest migration"
        if migrated
        else (
            f"reachable, at migration {revision or 'none'} (newest {head}): run pystator db upgrade"
        )
    )
    return {**report, "ok": True, "migrated": migrated, "detail": detail}


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0][:300] if text.strip() else "unreachable"


__all__ = [
    "FILE_FORMATS",
    "OBSERVATION_FIELDS",
    "SOURCES",
    "BuildScope",
    "BuiltDiscoveryCandidate",
    "DiscoveryDesk",
    "EdgeDiff",
    "InferenceThresholds",
    "InferredEdge",
    "active_machine",
    "allowed_edges",
    "backend_of",
    "build",
    "candidate_summary",
    "check_database",
    "compare",
    "discovery_config",
    "file_format",
    "ingest_file",
    "ingest_observations",
    "ingest_records",
    "listing",
    "machine_draft",
    "observation_of",
    "parse_time",
    "preview",
    "read_items",
    "result_to_dict",
    "scope_source",
]
