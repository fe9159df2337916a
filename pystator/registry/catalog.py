"""Registration and catalog semantics over the machine registry (what ``PyStatorRuntime`` calls).

- :func:`register`: idempotent on ``(meta.machine_name, meta.version)``. The first definition
  registered under a pair is stored (a new registry version); registering the same pair again
  with the same document is a no-op answering that version; with a different document it is a
  :class:`ConflictError` (bump ``meta.version`` to change a machine).
- :func:`create` refuses a name the registry already holds; :func:`update` refuses one it does
  not hold; both publish otherwise (identical to the current version: nothing stored).
- :func:`compatibility`: what a definition would do to the entities living on the current one:
  the one report of :mod:`pystator.registry.compatibility` (the publish path's).

:func:`create`, :func:`update` and :func:`register` publish through
:func:`pystator.registry.versions.publish`, so a version that would strand live work is refused
there (:class:`~pystator.registry.compatibility.IncompatibleVersionError`) unless ``state_map``
says where its entities go.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Engine

from pystator.fsm_core.definition import DEFAULT_VERSION
from pystator.fsm_core.errors import ConflictError, NotFoundError
from pystator.fsm_core.machine import StateMachine
from pystator.registry import versions
from pystator.registry.compatibility import CompatibilityReport, compatibility_report
from pystator.registry.versions import Published
from pystator.stores.sql import registry_queries
from pystator.stores.sql.audit_queries import Actor
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


def register(
    engine: Engine,
    config: Mapping[str, Any],
    *,
    by: Actor,
    state_map: Mapping[str, str] | None = None,
) -> Registered:
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
    published = versions.publish(engine, data, by=by, state_map=state_map)
    return _registered(published, machine.version)


def create(engine: Engine, config: Mapping[str, Any], *, by: Actor) -> Registered:
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
    engine: Engine,
    config: Mapping[str, Any],
    *,
    by: Actor,
    name: str | None = None,
    state_map: Mapping[str, str] | None = None,
    upgrade_policy: str | None = None,
) -> Registered:
    """Publish a new version of an existing machine; :class:`NotFoundError` when there is none
    (``name``, when given, must match ``meta.machine_name``). ``state_map`` and
    ``upgrade_policy`` as in :func:`pystator.registry.versions.publish`."""
    data = versions.canonical(config)
    versions.require_name(data)
    machine = StateMachine.from_dict(data, source="<request>")
    target = name or machine.name
    if not _versions(engine, target):
        raise NotFoundError(f"no stored machine named {target!r}", details={"machine": target})
    published = versions.publish(
        engine, data, by=by, name=name, state_map=state_map, upgrade_policy=upgrade_policy
    )
    return _registered(published, machine.version)


def compatibility(
    engine: Engine, config: Mapping[str, Any], *, state_map: Mapping[str, str] | None = None
) -> CompatibilityReport:
    """The :class:`CompatibilityReport` of ``config`` (a candidate next version of its machine,
    ``meta.machine_name``) against the live fleet; nothing is written."""
    data = versions.canonical(config)
    versions.require_name(data)
    machine = StateMachine.from_dict(data, source="<candidate>")
    return compatibility_report(engine, machine.name, machine, state_map=state_map)


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
