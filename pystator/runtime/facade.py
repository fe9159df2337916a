"""``PyStatorRuntime``: one object for database-backed machines, entities and the queue.

It is a thin facade: machines are the database registry (:mod:`pystator.registry`), entities
are the fleet's ``entity_states`` rows changed through the Orchestrator path the HTTP API uses
(:mod:`pystator.services.entities`), the queue is ``worker_events`` through the fleet's
producer, and the transition feed is ``transition_history`` on the cursor of
``GET /api/v1/transitions``. Nothing here has its own storage or its own copy of the engine.
"""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from pystator.config.settings import DEFAULT_MAX_ATTEMPTS, Settings, load_settings
from pystator.fleet.celery_config import is_memory_broker
from pystator.fleet.composition import prepare_database
from pystator.fleet.embedded import DrainThreads
from pystator.fleet.runtime import Runtime
from pystator.fsm_core.actions import ActionRegistry
from pystator.fsm_core.apply_data import APPLY_DATA_KEY, Route
from pystator.fsm_core.errors import (
    ActionNotFoundError,
    EntityNotFoundError,
    GuardNotFoundError,
)
from pystator.fsm_core.guards import GuardRegistry
from pystator.fsm_core.machine import StateMachine
from pystator.fsm_core.results import TransitionResult
from pystator.registry import catalog, versions
from pystator.registry.catalog import Registered
from pystator.registry.compatibility import CompatibilityReport
from pystator.registry.definitions import MachineDefinition
from pystator.registry.machines import load_app
from pystator.registry.versions import MachineDetail
from pystator.runtime.queue import QueueClient
from pystator.runtime.types import (
    EntitySnapshot,
    ObservabilitySummary,
    QueuedEvent,
    TransitionEvent,
    TransitionsPage,
)
from pystator.services import admin, entities, observability
from pystator.services import apply_data as apply_data_service
from pystator.services.apply_data import ApplyDataRequest
from pystator.services.audit import Actor
from pystator.services.entities import EventOutcome
from pystator.stores.sql.registry_queries import MachineRecord

#: The door registrations through the runtime are recorded as coming through: their author
#: and audit principal is ``runtime:<user>@<host>``, the audit row's route the method called.
RUNTIME_AUTHOR = "runtime"
#: Seconds ``subscribe`` waits between two looks for new transitions.
DEFAULT_SUBSCRIBE_POLL = 0.5
#: Rows one ``list_transitions`` page holds at most.
MAX_TRANSITIONS_PAGE = 1000


class PyStatorRuntime:
    """Database-backed machines, entity state, synchronous transitions and queue submission.

    Build it with :meth:`from_config` (``PYSTATOR_DATABASE_URL`` / ``pystator.cfg``),
    :meth:`from_url` or :meth:`in_memory` (a private SQLite database for tests and scripts).
    With the in-process broker (``PYSTATOR_BROKER_URL`` unset or ``memory://``) the runtime
    also runs an embedded worker, so queued events are applied without a separate process;
    with a real broker the ``pystator worker`` fleet applies them. :meth:`close` (or ``with``)
    releases everything.
    """

    def __init__(
        self,
        fleet: Runtime,
        *,
        guards: GuardRegistry,
        actions: ActionRegistry,
        embedded_worker: bool = False,
        cleanup: Callable[[], None] | None = None,
    ) -> None:
        self.fleet = fleet
        #: The guard registry every machine of this runtime is bound to (shared by reference).
        self.guards = guards
        #: The action registry every machine of this runtime is bound to (shared by reference).
        self.actions = actions
        #: The queue of this runtime's database.
        self.queue: QueueClient | None = QueueClient(fleet.engine, fleet.producer)
        self._versions: dict[tuple[str, int], StateMachine] = {}
        self._cleanup = cleanup
        self._worker: DrainThreads | None = None
        if embedded_worker:
            self._worker = DrainThreads(fleet, concurrency=1, fatal=False)
            self._worker.start()

    # construction ---------------------------------------------------------------------------

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        embedded_worker: bool | None = None,
        guards: GuardRegistry | None = None,
        actions: ActionRegistry | None = None,
        cleanup: Callable[[], None] | None = None,
    ) -> PyStatorRuntime:
        """A runtime on ``settings``' database (an embedded SQLite database is created or
        upgraded first; PostgreSQL must be upgraded already: ``pystator db upgrade``).
        ``embedded_worker`` (default: when the broker is the in-process one) runs a drain
        thread in this process that applies queued events. ``guards`` / ``actions`` default to
        the registries of ``PYSTATOR_APP`` (``module:factory``) when it is set, else new empty
        ones."""
        app_guards, app_actions = load_app(settings.app) if settings.app else (None, None)
        guards = guards if guards is not None else app_guards or GuardRegistry()
        actions = actions if actions is not None else app_actions or ActionRegistry()
        prepare_database(settings)
        fleet = Runtime.from_settings(settings, guards=guards, actions=actions)
        if embedded_worker is None:
            embedded_worker = is_memory_broker(settings.broker_url)
        return cls(
            fleet, guards=guards, actions=actions, embedded_worker=embedded_worker, cleanup=cleanup
        )

    @classmethod
    def from_config(
        cls,
        *,
        environ: Mapping[str, str] | None = None,
        config_file: str | Path | None = None,
        embedded_worker: bool | None = None,
    ) -> PyStatorRuntime:
        """A runtime from ``PYSTATOR_DATABASE_URL`` (and the other settings) in the
        environment, then ``pystator.cfg``, then the defaults (``sqlite:///pystator.db``)."""
        return cls.from_settings(
            load_settings(environ, config_file), embedded_worker=embedded_worker
        )

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        environ: Mapping[str, str] | None = None,
        embedded_worker: bool | None = None,
    ) -> PyStatorRuntime:
        """A runtime on the database at ``url`` (the other settings as :meth:`from_config`)."""
        settings = replace(load_settings(environ), database_url=url)
        return cls.from_settings(settings, embedded_worker=embedded_worker)

    @classmethod
    def in_memory(cls) -> PyStatorRuntime:
        """A private runtime for tests and scripts: a SQLite database in a temporary directory
        (removed by :meth:`close`), the in-process broker and an embedded worker. Nothing
        outside this process sees it; the environment's settings are not read."""
        tmp = tempfile.TemporaryDirectory(prefix="pystator-runtime-")
        url = f"sqlite:///{Path(tmp.name) / 'pystator.db'}"
        settings = Settings(database_url=url, broker_url="memory://")
        try:
            return cls.from_settings(settings, embedded_worker=True, cleanup=tmp.cleanup)
        except BaseException:
            tmp.cleanup()
            raise

    def close(self) -> None:
        """Stop the embedded worker, release connections (idempotent)."""
        worker, self._worker = self._worker, None
        if worker is not None:
            worker.drain(timeout=self.fleet.settings.worker_drain_timeout_s)
        else:
            self.fleet.close()
        cleanup, self._cleanup = self._cleanup, None
        if cleanup is not None:
            cleanup()

    def __enter__(self) -> PyStatorRuntime:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def engine(self) -> Any:
        """The SQLAlchemy engine of this runtime's database."""
        return self.fleet.engine

    # custom callables -----------------------------------------------------------------------

    def register_action(self, name: str, fn: Callable[..., Any]) -> None:
        """Register action ``name`` for every machine of this runtime (later ones too)."""
        self.actions.register(name, fn)

    def register_guard(self, name: str, fn: Callable[..., Any]) -> None:
        """Register guard ``name`` for every machine of this runtime (later ones too)."""
        self.guards.register(name, fn)

    # machine registration -------------------------------------------------------------------

    def register_machine_from_dict(self, config: Mapping[str, Any]) -> Registered:
        """Register a definition, idempotent on ``(meta.machine_name, meta.version)``: the
        same pair again is a no-op; the same pair with another document is a
        :class:`~pystator.errors.ConflictError` (bump ``meta.version``)."""
        registered = catalog.register(
            self.engine, config, by=_actor("PyStatorRuntime.register_machine_from_dict")
        )
        self._refresh()
        return registered

    def register_machine_from_file(self, path: str | Path) -> Registered:
        """:meth:`register_machine_from_dict` with a ``.yaml``/``.yml``/``.json`` file."""
        return self.register_machine_from_dict(versions.load_document(Path(path)))

    def register_machine_from_definition(self, definition: MachineDefinition) -> Registered:
        """:meth:`register_machine_from_dict` with a parsed :class:`MachineDefinition`."""
        return self.register_machine_from_dict(definition.document)

    def validate_machine(self, name: str, version: int | None = None) -> StateMachine:
        """Build ``name`` (registry version ``version``, default the current one) with this
        runtime's guards and actions and check every guard and action it names is
        registered: :class:`~pystator.errors.GuardNotFoundError` /
        :class:`~pystator.errors.ActionNotFoundError` otherwise. Returns the machine."""
        machine = self.machine(name, version)
        for transition in machine.transitions:
            for guard in transition.guards:
                if guard.name and guard.name not in machine.guard_registry:
                    raise GuardNotFoundError(
                        f"machine {name!r}: guard {guard.name!r} is not registered",
                        guard_name=guard.name,
                    )
        for action_name in _action_names(machine):
            if action_name not in machine.action_registry:
                raise ActionNotFoundError(
                    f"machine {name!r}: action {action_name!r} is not registered",
                    action_name=action_name,
                )
        return machine

    def list_machines(self, *, include_retired: bool = False) -> list[MachineRecord]:
        """The stored machines (name, current version, timestamps), by name."""
        return versions.list_machines(self.engine, include_retired=include_retired)

    def machine(self, name: str, version: int | None = None) -> StateMachine:
        """The compiled machine ``name`` at registry version ``version`` (default: current),
        with this runtime's guards and actions bound."""
        if version is None:
            return self.fleet.machines.get(name)
        key = (name, version)
        found = self._versions.get(key)
        if found is None:
            found = versions.show_machine(self.engine, name, version=version).machine(
                self.fleet.machines.bind_to
            )
            self._versions[key] = found
        return found

    # catalog --------------------------------------------------------------------------------

    def create_machine_from_dict(self, config: Mapping[str, Any]) -> Registered:
        """Store a new machine; :class:`~pystator.errors.ConflictError` when it exists."""
        created = catalog.create(
            self.engine, config, by=_actor("PyStatorRuntime.create_machine_from_dict")
        )
        self._refresh()
        return created

    def update_machine_from_dict(
        self,
        config: Mapping[str, Any],
        *,
        name: str | None = None,
        state_map: Mapping[str, str] | None = None,
        upgrade_policy: str | None = None,
    ) -> Registered:
        """Publish a new version of an existing machine (identical to the current version:
        nothing stored); :class:`~pystator.errors.NotFoundError` when there is none. A version
        that would strand live entities is refused with
        :class:`~pystator.registry.compatibility.IncompatibleVersionError` (its ``report``)
        unless ``state_map`` (old state -> new state) says where they go; ``upgrade_policy`` is
        ``auto`` or ``pinned`` (see "Changing a machine in production")."""
        updated = catalog.update(
            self.engine,
            config,
            by=_actor("PyStatorRuntime.update_machine_from_dict"),
            name=name,
            state_map=state_map,
            upgrade_policy=upgrade_policy,
        )
        self._refresh()
        return updated

    def get_machine_record(self, name: str, version: int | None = None) -> MachineDetail:
        """The stored machine with one version (default: current) and the list of all."""
        return versions.show_machine(self.engine, name, version=version)

    def check_machine_compatibility(
        self, config: Mapping[str, Any], *, state_map: Mapping[str, str] | None = None
    ) -> CompatibilityReport:
        """What publishing ``config`` would do to its machine's live work — the report the
        publish path (API, ``pystator machines sync``) decides with: removed states holding
        entities, pending events the new version would reject, timers it orphans. ``ok`` is
        False when publishing would be refused; nothing is stored."""
        return catalog.compatibility(self.engine, config, state_map=state_map)

    # entities -------------------------------------------------------------------------------

    def create_entity(
        self,
        machine: str,
        entity_id: str,
        *,
        version: int | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> EntitySnapshot:
        """Store a new entity in the machine's initial state, entered as a transition enters it
        (``on_enter`` effects stored, the actions whose ``when`` holds run after the commit);
        :class:`~pystator.errors.ConflictError` when it exists."""
        record = entities.create(self.engine, self.machine(machine, version), entity_id, context)
        return EntitySnapshot.from_record(record)

    def process_event(
        self,
        machine: str,
        entity_id: str,
        trigger: str,
        *,
        version: int | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> TransitionResult:
        """Apply ``trigger`` now (load, guards, versioned write, timers, then the actions in
        this process). A rejection is ``result.success`` False; a missing entity raises
        :class:`~pystator.errors.EntityNotFoundError`."""
        return entities.process(
            self.engine, self.machine(machine, version), entity_id, trigger, context
        )

    def send_event(
        self,
        machine: str,
        entity_id: str,
        trigger: str,
        *,
        version: int | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> EventOutcome:
        """:meth:`process_event` answering what ``POST /entities/{id}/events`` answers
        (the outcome with ``action_results``)."""
        return entities.send_event(
            self.engine, self.machine(machine, version), entity_id, trigger, context
        )

    def apply_data(
        self,
        machine: str,
        entity_id: str,
        data: Mapping[str, Any],
        *,
        version: int | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> list[TransitionResult]:
        """Merge ``data`` (over ``context``, when given) into the entity's context now and,
        under ``meta.classification.auto_route``, follow the states' ``when:`` rules through an
        existing transition (see the apply-data page). Returns the transitions taken: one
        result when the entity moved (or a failed result when the update was refused), empty
        when it stayed — the merged context is stored either way. A missing entity raises
        :class:`~pystator.errors.EntityNotFoundError`."""
        merged = {**(context or {}), **data}
        result = entities.apply_data(self.engine, self.machine(machine, version), entity_id, merged)
        return [result] if _moved(result) else []

    def get_entity(self, machine: str, entity_id: str) -> EntitySnapshot | None:
        """The stored entity, or None."""
        try:
            record = entities.load(self.engine, machine, entity_id)
        except EntityNotFoundError:
            return None
        return EntitySnapshot.from_record(record)

    @contextmanager
    def entity_operations(self) -> Iterator[EntityOperations]:
        """The advanced entity operations (export, import, dry run, purge, archive, the
        full view) on this runtime's database."""
        yield EntityOperations(self)

    # queue ----------------------------------------------------------------------------------

    def queue_event(
        self,
        machine: str,
        entity_id: str,
        trigger: str,
        context: Mapping[str, Any] | None = None,
        *,
        idempotency_key: str | None = None,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    ) -> int:
        """Queue a named event for the fleet (``submit_event``); returns its id."""
        return self._queue().submit_event(
            machine,
            entity_id,
            trigger,
            context,
            idempotency_key=idempotency_key,
            max_attempts=max_attempts,
        )

    def queue_apply_data(
        self,
        machine: str,
        entity_id: str,
        data: Mapping[str, Any],
        *,
        idempotency_key: str | None = None,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    ) -> int:
        """Queue a data update for the fleet (the same ``worker_events`` path as
        ``POST /api/v1/entities/{id}/apply-data``: ordered with the entity's named events,
        applied exactly once); returns its event id. The entity must exist
        (:class:`~pystator.errors.EntityNotFoundError`)."""
        queue = self._queue()
        request = ApplyDataRequest(
            machine=machine,
            entity_id=entity_id,
            data=data,
            idempotency_key=idempotency_key,
            max_attempts=max_attempts,
        )
        return int(apply_data_service.queue_apply_data(self.engine, queue.producer, request))

    def get_event_status(self, event_id: int) -> QueuedEvent | None:
        """:meth:`QueueClient.get_event_status` of :attr:`queue`."""
        return self._queue().get_event_status(event_id)

    def _queue(self) -> QueueClient:
        if self.queue is None:
            raise RuntimeError("this runtime has no queue")
        return self.queue

    # observability --------------------------------------------------------------------------

    def get_observability_summary(
        self,
        *,
        window_hours: float = 24,
        machine_name: str | None = None,
        entity_id: str | None = None,
    ) -> ObservabilitySummary:
        """Entities, transitions and events within the window, events by status, backlog
        and outbox (fleet-wide counts; ``entities_by_state`` for ``machine_name`` when given,
        and the entity's snapshot when ``machine_name`` and ``entity_id`` are)."""
        window = timedelta(hours=window_hours)
        data = observability.summary(self.engine, window=window)
        states = observability.state_metrics(self.engine, machine=machine_name, window=window)
        by_state = {
            (f"{row['state']}" if machine_name else f"{row['machine']}:{row['state']}"): row[
                "entities"
            ]
            for row in states["states"]
            if row["entities"]
        }
        entity = (
            self.get_entity(machine_name, entity_id)
            if machine_name is not None and entity_id is not None
            else None
        )
        return ObservabilitySummary(
            at=data["at"],
            window_hours=window_hours,
            machine_name=machine_name,
            entity_id=entity_id,
            entities=data["entities"],
            entities_by_machine=data["entities_by_machine"],
            entities_by_state=by_state,
            transitions_in_window=data["transitions_in_window"],
            events_in_window=data["events_in_window"],
            events_by_status=data["events"],
            backlog=data["backlog"],
            outbox=data["outbox"],
            entity=entity,
        )

    # transition feed ------------------------------------------------------------------------

    def list_transitions(
        self,
        *,
        after: int | None = None,
        limit: int = 100,
        machine_name: str | None = None,
        entity_id: str | None = None,
    ) -> TransitionsPage:
        """Committed transitions in the feed's commit-safe order after cursor ``after`` (the
        cursor of ``GET /api/v1/transitions``); ``next_cursor`` continues. On PostgreSQL a row
        shows once every older transaction has ended (never skipped, possibly a little late)."""
        rows = admin.transitions(
            self.engine,
            limit=max(1, min(limit, MAX_TRANSITIONS_PAGE)),
            after_id=after,
            machine=machine_name,
            entity_id=entity_id,
        )
        items = tuple(TransitionEvent.from_entry(i, entry) for i, entry in rows)
        return TransitionsPage(items=items, next_cursor=items[-1].id if items else after)

    def subscribe(
        self,
        *,
        after: int | None = None,
        machine_name: str | None = None,
        entity_id: str | None = None,
        poll_interval: float = DEFAULT_SUBSCRIBE_POLL,
        stop: threading.Event | None = None,
        limit: int = 100,
    ) -> Iterator[TransitionEvent]:
        """Every committed transition after cursor ``after`` (None: from the first, a
        replay), then new ones as they commit, polling every ``poll_interval`` seconds,
        until ``stop`` is set or the caller stops iterating. Save ``event.id`` to resume."""
        stopping = stop or threading.Event()
        cursor = after
        while not stopping.is_set():
            page = self.list_transitions(
                after=cursor, limit=limit, machine_name=machine_name, entity_id=entity_id
            )
            yield from page.items
            cursor = page.next_cursor
            if len(page.items) < limit:
                stopping.wait(poll_interval)

    # proxies --------------------------------------------------------------------------------

    def session(self, name: str, version: int | None = None) -> MachineSession:
        """A :class:`MachineSession`: this runtime's entity and queue calls for one machine."""
        return MachineSession(self, name, version)

    def _refresh(self) -> None:
        stored = self.fleet.machines.stored
        if stored is not None:
            stored.refresh()


def _actor(method: str) -> Actor:
    """Who a change made through ``method`` of the runtime is recorded as."""
    return Actor.python(RUNTIME_AUTHOR, method)


def _moved(result: TransitionResult) -> bool:
    """True when an apply-data took a transition (or was refused: the caller must see it)."""
    if not result.success:
        return True
    report = result.metadata.get(APPLY_DATA_KEY)
    return isinstance(report, Mapping) and report.get("route") == Route.MOVED


def _action_names(machine: StateMachine) -> set[str]:
    specs = [a for t in machine.transitions for a in t.actions]
    for state in machine.definition.states:
        specs.extend(state.on_enter)
        specs.extend(state.on_exit)
    return {spec.name for spec in specs if spec.is_named}


class EntityOperations:
    """The advanced entity operations of :meth:`PyStatorRuntime.entity_operations` (each is
    its own transaction, as over HTTP)."""

    def __init__(self, runtime: PyStatorRuntime) -> None:
        self._runtime = runtime
        self.engine = runtime.engine

    def view(self, machine: str, entity_id: str, *, history_limit: int | None = 50) -> Any:
        """State, context, history (newest ``history_limit``), pending events, armed timers."""
        return admin.entity_view(self.engine, machine, entity_id, history_limit=history_limit)

    def dry_run(
        self, machine: str, entity_id: str, trigger: str, context: Mapping[str, Any] | None = None
    ) -> entities.DryRun:
        """What ``trigger`` would do, storing nothing and running no action."""
        return entities.dry_run(
            self.engine, self._runtime.machine(machine), entity_id, trigger, context
        )

    def export(self, machine: str, entity_id: str) -> dict[str, Any]:
        """The entity's export document (``pystator.entity/1``)."""
        return entities.export(self.engine, machine, entity_id)

    def purge(self, machine: str, entity_id: str) -> dict[str, int]:
        """Delete the entity with its history, events and timers."""
        return entities.purge(self.engine, machine, entity_id)

    def archive(self, machine: str, entity_id: str) -> dict[str, Any]:
        """Export the entity, then purge it; returns the export document."""
        return entities.archive(self.engine, machine, entity_id)


class MachineSession:
    """One machine's view of a :class:`PyStatorRuntime` (no need to repeat its name)."""

    def __init__(self, runtime: PyStatorRuntime, name: str, version: int | None = None) -> None:
        self.runtime = runtime
        self.name = name
        self.version = version

    @property
    def machine(self) -> StateMachine:
        """The compiled machine (registry version :attr:`version`, default current)."""
        return self.runtime.machine(self.name, self.version)

    def create_entity(
        self, entity_id: str, *, context: Mapping[str, Any] | None = None
    ) -> EntitySnapshot:
        """:meth:`PyStatorRuntime.create_entity` for this machine."""
        return self.runtime.create_entity(
            self.name, entity_id, version=self.version, context=context
        )

    def process_event(
        self, entity_id: str, trigger: str, *, context: Mapping[str, Any] | None = None
    ) -> TransitionResult:
        """:meth:`PyStatorRuntime.process_event` for this machine."""
        return self.runtime.process_event(
            self.name, entity_id, trigger, version=self.version, context=context
        )

    def apply_data(
        self, entity_id: str, data: Mapping[str, Any], *, context: Mapping[str, Any] | None = None
    ) -> list[TransitionResult]:
        """:meth:`PyStatorRuntime.apply_data` for this machine."""
        return self.runtime.apply_data(
            self.name, entity_id, data, version=self.version, context=context
        )

    def get_entity(self, entity_id: str) -> EntitySnapshot | None:
        """:meth:`PyStatorRuntime.get_entity` for this machine."""
        return self.runtime.get_entity(self.name, entity_id)

    def queue_event(
        self, entity_id: str, trigger: str, context: Mapping[str, Any] | None = None, **kw: Any
    ) -> int:
        """:meth:`PyStatorRuntime.queue_event` for this machine."""
        return self.runtime.queue_event(self.name, entity_id, trigger, context, **kw)

    def queue_apply_data(self, entity_id: str, data: Mapping[str, Any], **kw: Any) -> int:
        """:meth:`PyStatorRuntime.queue_apply_data` for this machine."""
        return self.runtime.queue_apply_data(self.name, entity_id, data, **kw)

    def list_transitions(self, **kw: Any) -> TransitionsPage:
        """:meth:`PyStatorRuntime.list_transitions` of this machine."""
        return self.runtime.list_transitions(machine_name=self.name, **kw)


__all__ = [
    "EntityOperations",
    "MachineSession",
    "PyStatorRuntime",
]
