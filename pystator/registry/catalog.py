"""Registration and catalog semantics over the machine registry (what ``PyStatorRuntime`` calls).

- :func:`register`: idempotent on ``(meta.machine_name, meta.version)``. The first definition
  registered under a pair is stored (a new registry version); registering the same pair again
  with the same document is a no-op answering that version; with a different document it is a
  :class:`ConflictError` (bump ``meta.version`` to change a machine).
- :func:`create` refuses a name the registry already holds; :func:`update` refuses one it does
  not hold; both publish otherwise (identical to the current version: nothing stored).
- :func:`compatibility`: what a definition would do to the entities living on the current one.

The compatibility report here is deliberately small (entities in states the new definition
lacks, pending events, armed timers). The full report of the "change a live machine safely"
work (``pystator.registry.compatibility``) replaces :func:`compatibility` when it lands; callers
only use :class:`CompatibilityReport`'s documented fields.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Engine

from pystator.fsm_core.definition import DEFAULT_VERSION
from pystator.fsm_core.errors import ConflictError, FSMError, NotFoundError
from pystator.fsm_core.machine import StateMachine
from pystator.registry import versions
from pystator.registry.versions import Published
from pystator.stores.sql import observability_queries, registry_queries
from pystator.stores.sql.engine import translate_errors


@dataclass(frozen=True, slots=True, kw_only=True)
class Registered:
    """A registered machine: its name, ``meta.version``, registry version number, and whether
    this call stored it (False: that ``(name, version)`` was already registered)."""

    name: str
    version: str
    registry_version: int
    created: bool
    checksum: str


def register(engine: Engine, config: Mapping[str, Any], *, by: str) -> Registered:
    """Register ``config`` idempotently on ``(meta.machine_name, meta.version)`` (see the
    module docstring)."""
    data = versions.canonical(config)
    machine = StateMachine.from_dict(data, source="<request>")
    versions.require_name(data)
    digest = versions.checksum(data)
    for stored in _versions(engine, machine.name):
        if _version_of(stored.definition) != machine.version:
            continue
        if stored.checksum == digest:
            return Registered(
                name=machine.name,
                version=machine.version,
                registry_version=stored.version,
                created=False,
                checksum=digest,
            )
        raise ConflictError(
            f"machine {machine.name!r} version {machine.version!r} is already registered with "
            "a different definition; bump meta.version to register a change",
            details={"machine": machine.name, "version": machine.version},
        )
    published = versions.publish(engine, data, by=by)
    return _registered(published, machine.version)


def create(engine: Engine, config: Mapping[str, Any], *, by: str) -> Registered:
    """Store a new machine; :class:`ConflictError` when the registry already holds its name."""
    data = versions.canonical(config)
    versions.require_name(data)
    machine = StateMachine.from_dict(data, source="<request>")
    if _versions(engine, machine.name):
        raise ConflictError(
            f"machine {machine.name!r} already exists; update it instead",
            details={"machine": machine.name},
        )
    return _registered(versions.publish(engine, data, by=by), machine.version)


def update(
    engine: Engine, config: Mapping[str, Any], *, by: str, name: str | None = None
) -> Registered:
    """Publish a new version of an existing machine; :class:`NotFoundError` when there is none
    (``name``, when given, must match ``meta.machine_name``)."""
    data = versions.canonical(config)
    versions.require_name(data)
    machine = StateMachine.from_dict(data, source="<request>")
    target = name or machine.name
    if not _versions(engine, target):
        raise NotFoundError(f"no stored machine named {target!r}", details={"machine": target})
    return _registered(versions.publish(engine, data, by=by, name=name), machine.version)


@dataclass(frozen=True, slots=True, kw_only=True)
class CompatibilityReport:
    """What publishing a definition would do to the entities of the current version.

    ``compatible`` is False when entities sit in states the new definition lacks
    (``stranded``: state -> entities); ``pending_events`` and ``armed_timers`` count the work
    still queued for the machine. ``problems`` lists definition errors (then nothing else is
    checked).
    """

    machine: str
    current_version: int | None
    compatible: bool
    stranded: dict[str, int] = field(default_factory=dict)
    entities: int = 0
    pending_events: int = 0
    armed_timers: int = 0
    problems: tuple[str, ...] = ()


def compatibility(engine: Engine, config: Mapping[str, Any]) -> CompatibilityReport:
    """The :class:`CompatibilityReport` of ``config`` against its machine's live entities."""
    try:
        data = versions.canonical(config)
        versions.require_name(data)
        machine = StateMachine.from_dict(data, source="<request>")
    except FSMError as exc:
        meta = config.get("meta") if isinstance(config, Mapping) else None
        name = meta.get("machine_name") if isinstance(meta, Mapping) else None
        return CompatibilityReport(
            machine=str(name or ""), current_version=None, compatible=False, problems=(str(exc),)
        )
    with translate_errors("machine registry"), engine.connect() as conn:
        record = registry_queries.get_machine(conn, machine.name)
        by_state = observability_queries.entities_by_state(conn, machine.name)
        work = registry_queries.pending_work(conn, machine.name)
    stranded = {state: n for _m, state, n in by_state if not _knows(machine, state)}
    return CompatibilityReport(
        machine=machine.name,
        current_version=record.current_version if record else None,
        compatible=not stranded,
        stranded=stranded,
        entities=sum(n for _m, _s, n in by_state),
        pending_events=work.get("pending_events", 0),
        armed_timers=work.get("armed_timers", 0),
    )


def _knows(machine: StateMachine, state: str) -> bool:
    try:
        machine.get_available_transitions(state)
    except FSMError:
        return False
    return True


def _versions(engine: Engine, name: str) -> list[registry_queries.MachineVersion]:
    with translate_errors("machine registry"), engine.connect() as conn:
        return registry_queries.list_versions(conn, name)


def _version_of(definition: Mapping[str, Any]) -> str:
    meta = definition.get("meta")
    value = meta.get("version") if isinstance(meta, Mapping) else None
    return DEFAULT_VERSION if value is None else str(value)


def _registered(published: Published, meta_version: str) -> Registered:
    return Registered(
        name=published.name,
        version=meta_version,
        registry_version=published.version,
        created=published.created,
        checksum=published.checksum,
    )


__all__ = ["CompatibilityReport", "Registered", "compatibility", "create", "register", "update"]
