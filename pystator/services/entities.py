"""Entity operations of the HTTP API's ``/entities/{entity_id}/…`` routes: create, apply an
event synchronously (the Orchestrator path: persist, then run the actions here), dry-run,
export / import, purge and archive.

The synchronous path is the library's :class:`~pystator.orchestrator.Orchestrator` over the
fleet's own ``entity_states`` table (optimistic locking against the workers), with the actions
run in this process and reported in ``action_results``. The timers a transition arms or
cancels are written to ``worker_timers`` in the SAME transaction as the state row and its
history row (the fleet processor's timer writes, :class:`~pystator.schedulers.fleet_timers.DbTimerSink`),
so a committed state always has its timers (DESIGN.md invariant 7); the fleet's timer backends
fire them. A create is the engine's entry into the initial configuration
(:func:`~pystator.fsm_core.step.creation`), committed and acted on as an event's step is: its
``on_enter`` effects are in the stored row, its timers are written with it, and the actions
whose ``when`` held run here after the commit.
Nothing here goes through the worker queue: queued events are ``POST /api/v1/events``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection, Engine

from pystator.fsm_core.actions import ActionExecutor, ExecutionReport
from pystator.fsm_core.clock import as_utc, utc_now
from pystator.fsm_core.errors import (
    ConflictError,
    EntityNotFoundError,
    FSMError,
    InvalidEventError,
    StaleVersionError,
    StoreError,
)
from pystator.fsm_core.machine import StateMachine
from pystator.fsm_core.records import (
    CREATED_TRIGGER,
    EntityRecord,
    EventInput,
    EventOrigin,
    HistoryEntry,
    Outcome,
)
from pystator.fsm_core.results import TransitionResult
from pystator.fsm_core.step import StepOutcome, apply_event, creation, starting_record
from pystator.fsm_core.summary import jsonable
from pystator.orchestrator import Orchestrator
from pystator.schedulers.fleet_timers import DbTimerSink
from pystator.stores.base import check_history, check_version
from pystator.stores.sql import entity_admin_queries, entity_queries, history_queries
from pystator.stores.sql.connections import transaction
from pystator.stores.sql.engine import translate_errors
from pystator.stores.sql.state_store import SqlStateStore

#: The trigger of the history row an import writes when the document carries no history.
IMPORTED_TRIGGER = "__entity_imported__"
#: The ``format`` of an export document (what import accepts).
EXPORT_FORMAT = "pystator.entity/1"
#: Most history rows an export carries (the newest ones) and an import accepts.
EXPORT_HISTORY_LIMIT = 10_000


@dataclass(frozen=True, slots=True, kw_only=True)
class EventOutcome:
    """What ``POST /entities/{id}/events`` (or one item of ``bulk/events``) did."""

    machine: str
    entity_id: str
    trigger: str
    success: bool
    source_state: str | None
    target_state: str | None
    version: int | None
    actions: tuple[str, ...] = ()
    action_results: tuple[dict[str, Any], ...] = ()
    error_detail: dict[str, Any] | None = None
    context: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly (the route's answer)."""
        return {
            "machine_name": self.machine,
            "entity_id": self.entity_id,
            "trigger": self.trigger,
            "success": self.success,
            "source_state": self.source_state,
            "target_state": self.target_state,
            "version": self.version,
            "actions": list(self.actions),
            "action_results": [dict(r) for r in self.action_results],
            "error_detail": self.error_detail,
            "context": jsonable(self.context),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class DryRun:
    """What an event would do, computed without storing anything or running an action."""

    machine: str
    entity_id: str
    trigger: str
    would_succeed: bool
    source_state: str | None
    target_state: str | None
    actions_that_would_execute: tuple[str, ...]
    timers_that_would_arm: tuple[str, ...]
    error_detail: dict[str, Any] | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly (the route's answer)."""
        return {
            "machine_name": self.machine,
            "entity_id": self.entity_id,
            "trigger": self.trigger,
            "would_succeed": self.would_succeed,
            "source_state": self.source_state,
            "target_state": self.target_state,
            "actions_that_would_execute": list(self.actions_that_would_execute),
            "timers_that_would_arm": list(self.timers_that_would_arm),
            "error_detail": self.error_detail,
        }


def error_detail(error: BaseException | None, extra: Mapping[str, Any] | None = None) -> Any:
    """The documented structured failure: ``code``, ``type``, ``message``, ``details``."""
    if error is None:
        return None
    if isinstance(error, FSMError):
        details = {**error.details, **(extra or {})}
        return {
            "code": error.code.value,
            "type": type(error).__name__,
            "message": error.message,
            "details": jsonable(details) or None,
        }
    return {
        "code": "internal_error",
        "type": type(error).__name__,
        "message": str(error),
        "details": jsonable(dict(extra or {})) or None,
    }


class _ReportingExecutor(ActionExecutor):
    """Runs every planned action (a failing one does not stop the next) and keeps the report."""

    def __init__(self, machine: StateMachine) -> None:
        super().__init__(machine.action_registry, raise_on_error=False)
        self.reports: list[ExecutionReport] = []

    def execute(self, result: Any, context: Mapping[str, Any]) -> ExecutionReport:
        report = super().execute(result, context)
        self.reports.append(report)
        return report


#: The fleet processor's timer writes (arm, then cancel, inside the caller's transaction).
_TIMER_ROWS = DbTimerSink()


class _OneTransaction(Orchestrator):
    """The Orchestrator whose commit writes the state row, its history row and the timers the
    transition arms or cancels in one transaction (nothing is left to schedule after it)."""

    def __init__(self, engine: Engine, machine: StateMachine, executor: ActionExecutor) -> None:
        super().__init__(
            machine,
            store=SqlStateStore(engine=engine),
            use_initial_state_when_missing=False,
            action_executor=executor,
        )
        self.engine = engine

    def _save(self, outcome: StepOutcome) -> None:
        commit_step(self.engine, outcome)

    def _schedule(self, outcome: StepOutcome) -> None:
        """The timers were written with the state (see :func:`commit_step`)."""
        del outcome

    def create(self, entity_id: str, context: Mapping[str, Any]) -> StepOutcome:
        """A new entity entering the initial configuration (the engine's :func:`creation`
        step), committed and acted on as an event's step is: refused before anything is
        stored when it plans an action nobody registered, :class:`ConflictError` when the
        entity exists, its actions run after the commit."""
        event = EventInput(trigger=CREATED_TRIGGER, context=dict(context))
        outcome = creation(self.machine, entity_id, event, self._clock())
        self._check_actions(outcome)
        try:
            self._save(outcome)
        except StaleVersionError as exc:
            raise _exists(self.machine.name, entity_id) from exc
        self._act(entity_id, outcome, event)
        return outcome


def commit_step(engine: Engine, outcome: StepOutcome) -> None:
    """Commit an applied step: the versioned state write, its history row, then its armed and
    cancelled timers, in one transaction (any failure leaves none of them)."""
    record = outcome.record
    if record is None:
        raise ValueError("only an applied step (with a new record) is committed")
    check_version(record, outcome.expected_version)
    check_history(record, outcome.history)
    with translate_errors("entities"), transaction(engine) as conn:
        entity_queries.save_record(conn, record, expected_version=outcome.expected_version)
        if outcome.history is not None:
            history_queries.insert_history(conn, [outcome.history])
        _TIMER_ROWS.in_transaction(conn, outcome.arm, outcome.cancel, utc_now())


def load(engine: Engine, machine: str, entity_id: str) -> EntityRecord:
    """The stored record; :class:`EntityNotFoundError` (404) when there is none."""
    with translate_errors("entities"), engine.connect() as conn:
        record = entity_queries.load_record(conn, machine, entity_id)
    if record is None:
        raise _missing(machine, entity_id)
    return record


def create(
    engine: Engine,
    machine: StateMachine,
    entity_id: str,
    context: Mapping[str, Any] | None = None,
) -> EntityRecord:
    """Store a new entity in the machine's initial configuration (version 1, a
    ``__entity_created__`` history row), entered as a transition enters it: the ``on_enter``
    entries of every state entered are decided on ``context`` (``when``, ``branch``) and its
    effects are in the stored context; the entered states' ``after:``/``timeout:`` timers are
    armed in the same transaction; the named actions run here after the commit (a failing
    action does not undo the create). :class:`ConflictError` (409) when it exists; a ``when``
    or effect that fails raises its error (``GUARD_FAILED``, ``ACTION_FAILED``) and an
    unregistered action :class:`ActionNotFoundError`, both before anything is stored."""
    return create_reporting(engine, machine, entity_id, context)[0]


def create_reporting(
    engine: Engine,
    machine: StateMachine,
    entity_id: str,
    context: Mapping[str, Any] | None = None,
) -> tuple[EntityRecord, tuple[dict[str, Any], ...]]:
    """:func:`create`, with the results of the ``on_enter`` actions it ran (the
    ``action_results`` shape of an event)."""
    executor = _ReportingExecutor(machine)
    outcome = _OneTransaction(engine, machine, executor).create(entity_id, context or {})
    assert outcome.record is not None  # a creation is always an applied step
    return outcome.record, _action_rows(executor.reports)


def _insert(engine: Engine, record: EntityRecord, history: Sequence[HistoryEntry]) -> None:
    try:
        with translate_errors("entities"), transaction(engine) as conn:
            entity_queries.insert_record(conn, record)
            history_queries.insert_history(conn, history)
    except StaleVersionError as exc:
        raise _exists(record.machine, record.entity_id) from exc


def _exists(machine: str, entity_id: str) -> ConflictError:
    return ConflictError(
        f"entity {entity_id!r} of machine {machine!r} already exists",
        details={"machine": machine, "entity_id": entity_id},
    )


def send_event(
    engine: Engine,
    machine: StateMachine,
    entity_id: str,
    trigger: str,
    context: Mapping[str, Any] | None = None,
) -> EventOutcome:
    """Apply ``trigger`` now through the Orchestrator: load, guards, persist (versioned), arm
    timers, run the actions here. A rejected or failed transition is an outcome with
    ``success: false`` and ``error_detail``; a missing entity is 404."""
    load(engine, machine.name, entity_id)
    executor = _ReportingExecutor(machine)
    orchestrator = _orchestrator(engine, machine, executor)
    event = EventInput(trigger=trigger, context=dict(context or {}))
    try:
        result = orchestrator.process_input(entity_id, event)
    except (StaleVersionError, StoreError):
        raise
    except FSMError as exc:  # e.g. an unregistered action: refused before anything is stored
        return _failed(machine.name, entity_id, trigger, exc, engine)
    reports = executor.reports
    return _outcome(machine.name, entity_id, result, reports)


def process(
    engine: Engine,
    machine: StateMachine,
    entity_id: str,
    trigger: str,
    context: Mapping[str, Any] | None = None,
) -> TransitionResult:
    """:func:`send_event`'s path answering the engine's :class:`TransitionResult` (the
    Python runtime's ``process_event``): a refusal before anything is stored (an unregistered
    action) raises its :class:`FSMError`; a missing entity is :class:`EntityNotFoundError`."""
    load(engine, machine.name, entity_id)
    orchestrator = _orchestrator(engine, machine, _ReportingExecutor(machine))
    return orchestrator.process_input(
        entity_id, EventInput(trigger=trigger, context=dict(context or {}))
    )


def apply_data(
    engine: Engine, machine: StateMachine, entity_id: str, data: Mapping[str, Any]
) -> TransitionResult:
    """A data update applied now through the Orchestrator (the Python runtime's
    ``apply_data``): ``data`` merges into the stored context and, under
    ``meta.classification.auto_route``, the entity moves through an existing transition to the
    state whose ``when`` rules match (``result.metadata["apply_data"]`` reports the route);
    a missing entity is :class:`EntityNotFoundError`."""
    load(engine, machine.name, entity_id)
    orchestrator = _orchestrator(engine, machine, _ReportingExecutor(machine))
    return orchestrator.apply_data(entity_id, data)


def _orchestrator(engine: Engine, machine: StateMachine, executor: ActionExecutor) -> Orchestrator:
    return _OneTransaction(engine, machine, executor)


def _failed(
    machine: str, entity_id: str, trigger: str, exc: FSMError, engine: Engine
) -> EventOutcome:
    record = load(engine, machine, entity_id)
    return EventOutcome(
        machine=machine,
        entity_id=entity_id,
        trigger=trigger,
        success=False,
        source_state=record.state,
        target_state=None,
        version=record.version,
        error_detail=error_detail(exc),
        context=record.context,
    )


def _outcome(
    machine: str, entity_id: str, result: TransitionResult, reports: Sequence[ExecutionReport]
) -> EventOutcome:
    rows = _action_rows(reports)
    metadata = {k: v for k, v in result.metadata.items() if k not in ("attempts",)}
    version = metadata.get("entity_version")
    return EventOutcome(
        machine=machine,
        entity_id=entity_id,
        trigger=result.trigger,
        success=result.success,
        source_state=result.source_state,
        target_state=result.target_state,
        version=version if isinstance(version, int) else None,
        actions=tuple(a.name for a in result.actions) if result.success else (),
        action_results=tuple(rows),
        error_detail=error_detail(result.error, _engine_details(metadata)),
        context=result.context or {},
    )


def _action_rows(reports: Sequence[ExecutionReport]) -> tuple[dict[str, Any], ...]:
    return tuple(
        {
            "name": o.name,
            "status": o.status,
            "attempts": o.attempts,
            "error": None if o.error is None else str(o.error),
        }
        for report in reports
        for o in report.outcomes
    )


def _engine_details(metadata: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in metadata.items() if k != "entity_version"}


def dry_run(
    engine: Engine,
    machine: StateMachine,
    entity_id: str,
    trigger: str,
    context: Mapping[str, Any] | None = None,
) -> DryRun:
    """The same evaluation as :func:`send_event` (the pure step over the stored record), with
    nothing stored, no timer armed and no action run."""
    record = load(engine, machine.name, entity_id)
    event = EventInput(trigger=trigger, context=dict(context or {}))
    start = starting_record(machine, entity_id, record, use_initial=False)
    source = start.state if start is not None else None
    try:
        outcome = apply_event(machine, record, event, utc_now(), entity_id=entity_id)
    except FSMError as exc:
        return DryRun(
            machine=machine.name,
            entity_id=entity_id,
            trigger=trigger,
            would_succeed=False,
            source_state=source,
            target_state=None,
            actions_that_would_execute=(),
            timers_that_would_arm=(),
            error_detail=error_detail(exc),
        )
    applied = outcome.status == Outcome.APPLIED
    result = outcome.result
    return DryRun(
        machine=machine.name,
        entity_id=entity_id,
        trigger=trigger,
        would_succeed=applied,
        source_state=source,
        target_state=result.target_state if applied else None,
        actions_that_would_execute=tuple(a.name for a in outcome.actions) if applied else (),
        timers_that_would_arm=tuple(t.trigger for t in outcome.arm) if applied else (),
        error_detail=None if applied else error_detail(result.error, dict(result.metadata)),
    )


def export(engine: Engine, machine: str, entity_id: str) -> dict[str, Any]:
    """The entity as a JSON document (state, context, version, entries, the newest
    :data:`EXPORT_HISTORY_LIMIT` history rows) that :func:`import_entity` restores."""
    with translate_errors("entities"), engine.connect() as conn:
        record = entity_queries.load_record(conn, machine, entity_id)
        if record is None:
            raise _missing(machine, entity_id)
        history = history_queries.page_history(conn, machine, entity_id, limit=EXPORT_HISTORY_LIMIT)
    return _document(record, list(reversed(history)))


def _document(record: EntityRecord, history: Sequence[HistoryEntry]) -> dict[str, Any]:
    return {
        "format": EXPORT_FORMAT,
        "machine_name": record.machine,
        "entity_id": record.entity_id,
        "state": record.state,
        "context": jsonable(record.context),
        "version": record.version,
        "entries": dict(record.entries),
        "created_at": _iso(record.created_at),
        "updated_at": _iso(record.updated_at),
        "history": [
            {
                **{k: jsonable(v) for k, v in h.transition_fields().items()},
                "created_at": h.created_at.isoformat(),
                "machine_version": h.machine_version,
            }
            for h in history
        ],
    }


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


@dataclass(frozen=True, slots=True, kw_only=True)
class ImportedHistory:
    """One history row of an import document (the export's shape)."""

    version: int
    from_state: str | None
    to_state: str
    trigger: str | None
    origin: str
    actions: tuple[str, ...]
    payload: Mapping[str, Any] | None
    at: datetime
    event_id: int | None = None
    machine_version: int | None = None


def import_entity(
    engine: Engine,
    machine: StateMachine,
    entity_id: str,
    *,
    state: str,
    context: Mapping[str, Any],
    version: int | None = None,
    entries: Mapping[str, int] | None = None,
    history: Sequence[ImportedHistory] = (),
) -> EntityRecord:
    """Restore an exported entity (its state, context, version, entries and history rows as
    they were); 409 when it exists, 422 when the state is not the machine's or the history
    does not fit the version."""
    if state not in machine.states:
        raise InvalidEventError(
            f"state: machine {machine.name!r} has no state {state!r}",
            details={"field": "state", "rule": "unknown"},
        )
    if len(history) > EXPORT_HISTORY_LIMIT:
        raise InvalidEventError(
            f"history: {len(history)} rows; an import holds at most {EXPORT_HISTORY_LIMIT}",
            details={"field": "history", "rule": "length"},
        )
    now = utc_now()
    top = max((h.version for h in history), default=0)
    final = version if version is not None else max(top, 1)
    versions = [h.version for h in history]
    if len(set(versions)) != len(versions) or top > final or any(v < 1 for v in versions):
        raise InvalidEventError(
            f"history: versions must be distinct, from 1 up to the entity's version {final}",
            details={"field": "history", "rule": "versions"},
        )
    if entries and any(not 1 <= v <= final for v in entries.values()):
        raise InvalidEventError(
            f"entries: every state entry is a version from 1 to the entity's version {final}",
            details={"field": "entries", "rule": "range"},
        )
    record = EntityRecord(
        machine=machine.name,
        entity_id=entity_id,
        state=state,
        context=dict(context),
        version=final,
        entries=dict(entries) if entries else {state: final},
        created_at=now,
        updated_at=now,
    )
    rows = [
        HistoryEntry(
            machine=machine.name,
            entity_id=entity_id,
            version=h.version,
            source_state=h.from_state,
            target_state=h.to_state,
            trigger=h.trigger,
            event_id=h.event_id,
            origin=h.origin,
            actions=h.actions,
            payload=h.payload,
            created_at=as_utc(h.at),
            machine_version=h.machine_version,
        )
        for h in history
    ]
    if final not in versions:
        rows.append(
            HistoryEntry(
                machine=machine.name,
                entity_id=entity_id,
                version=final,
                source_state=None,
                target_state=state,
                trigger=IMPORTED_TRIGGER,
                event_id=None,
                origin=EventOrigin.DIRECT,
                actions=(),
                payload=dict(context),
                created_at=now,
            )
        )
    _insert(engine, record, rows)
    return record


def import_document(
    engine: Engine, machine: StateMachine, entity_id: str, document: Mapping[str, Any]
) -> EntityRecord:
    """:func:`import_entity` from an export document read as JSON (the CLI's import): a
    document that is not an export's shape is :class:`InvalidEventError` naming the field."""
    rows = document.get("history") or []
    if not isinstance(rows, list):
        raise _bad_document("history", "a list of history rows")
    context = document.get("context") or {}
    entries = document.get("entries")
    if not isinstance(context, dict) or not (entries is None or isinstance(entries, dict)):
        raise _bad_document("context" if not isinstance(context, dict) else "entries", "an object")
    state = document.get("state")
    if not isinstance(state, str):
        raise _bad_document("state", "a state name")
    version = document.get("version")
    if version is not None and not isinstance(version, int):
        raise _bad_document("version", "an integer")
    return import_entity(
        engine,
        machine,
        entity_id,
        state=state,
        context=context,
        version=version,
        entries=entries,
        history=[_history_row(i, row) for i, row in enumerate(rows)],
    )


def _history_row(index: int, row: Any) -> ImportedHistory:
    try:
        return ImportedHistory(
            version=int(row["version"]),
            from_state=row.get("source_state"),
            to_state=str(row["target_state"]),
            trigger=row.get("trigger"),
            origin=str(row.get("origin") or EventOrigin.DIRECT.value),
            actions=tuple(str(a) for a in row.get("actions") or ()),
            payload=row.get("payload"),
            at=datetime.fromisoformat(str(row["created_at"])),
            event_id=row.get("event_id"),
            machine_version=row.get("machine_version"),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise _bad_document(f"history[{index}]", f"an exported history row ({exc})") from exc


def _bad_document(field_name: str, expected: str) -> InvalidEventError:
    return InvalidEventError(
        f"{field_name}: expected {expected}", details={"field": field_name, "rule": "type"}
    )


def purge(engine: Engine, machine: str, entity_id: str) -> dict[str, int]:
    """Delete the entity, its history and its armed timers; 404 when it does not exist, 409
    while it has pending events or actions (retry or discard those first)."""
    with translate_errors("entities"), transaction(engine) as conn:
        return _purge(conn, machine, entity_id)


def archive(engine: Engine, machine: str, entity_id: str) -> dict[str, Any]:
    """Export the entity, then purge it, in one transaction: the document comes back (import it
    to restore the entity)."""
    with translate_errors("entities"), transaction(engine) as conn:
        record = _locked(conn, machine, entity_id)
        history = history_queries.page_history(conn, machine, entity_id, limit=EXPORT_HISTORY_LIMIT)
        document = _document(record, list(reversed(history)))
        deleted = _purge(conn, machine, entity_id)
    return {"document": document, "deleted": deleted}


def _locked(conn: Connection, machine: str, entity_id: str) -> EntityRecord:
    record = entity_queries.load_record(conn, machine, entity_id, for_update=True)
    if record is None:
        raise _missing(machine, entity_id)
    return record


def _missing(machine: str, entity_id: str) -> EntityNotFoundError:
    return EntityNotFoundError(
        f"no entity {entity_id!r} of machine {machine!r}",
        details={"machine": machine, "entity_id": entity_id},
    )


def _purge(conn: Connection, machine: str, entity_id: str) -> dict[str, int]:
    _locked(conn, machine, entity_id)
    waiting = entity_admin_queries.pending_work(conn, machine, entity_id)
    if any(waiting.values()):
        raise ConflictError(
            f"entity {entity_id!r} of machine {machine!r} has "
            f"{waiting['pending_events']} pending event(s) and {waiting['pending_actions']} "
            "pending action(s): retry or discard them first",
            details=waiting,
        )
    return entity_admin_queries.purge(conn, machine, entity_id)


__all__ = [
    "CREATED_TRIGGER",
    "EXPORT_FORMAT",
    "EXPORT_HISTORY_LIMIT",
    "IMPORTED_TRIGGER",
    "DryRun",
    "EventOutcome",
    "ImportedHistory",
    "apply_data",
    "archive",
    "commit_step",
    "create",
    "create_reporting",
    "dry_run",
    "error_detail",
    "export",
    "import_document",
    "import_entity",
    "load",
    "process",
    "purge",
    "send_event",
]
