"""The machine registry's operations: publish a version, list, show, retire, sync a directory.

``pystator machines …`` and the HTTP API's ``/api/v1/machines`` routes call these. A definition
is validated completely before anything is stored (:class:`MachineValidationError` lists every
problem with its path). Versions are immutable and numbered 1, 2, 3, … per machine; publishing a
definition identical to the current version (same canonical JSON) stores nothing and returns
that version.

Publishing is checked against the live fleet first (:mod:`pystator.registry.compatibility`): a
version that would strand entities or pending events is refused with
:class:`~pystator.registry.compatibility.IncompatibleVersionError` unless a state map sends every
removed state's entities somewhere (:mod:`pystator.registry.migration` moves them in the same
transaction). ``dry_run`` answers the report alone. Each version carries its upgrade policy:
``auto`` (the default: entities move to it on their next event) or ``pinned`` (entities stay on
the version they are on until a state map migrates them).

Every door (the HTTP API, the dashboard, ``pystator machines``, the Python facade) passes the
:class:`~pystator.stores.sql.audit_queries.Actor` it acts as: a publish or a retirement writes its
audit row in its own transaction (kind ``machine.published`` when a version was stored,
``machine.retired``), so the change and its row commit together and a refused one leaves none.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Connection, Engine

from pystator.fsm_core.clock import Clock, utc_now
from pystator.fsm_core.document_size import oversize
from pystator.fsm_core.errors import (
    ConfigProblem,
    ConfigurationError,
    ConflictError,
    MachineValidationError,
    NotFoundError,
)
from pystator.fsm_core.loading import read_document
from pystator.fsm_core.machine import StateMachine
from pystator.registry.compatibility import (
    CompatibilityReport,
    IncompatibleVersionError,
    assess,
    compatibility_report,
    current_machine,
    read_live,
)
from pystator.registry.machines import machine_files
from pystator.registry.migration import MigrationResult, migrate
from pystator.registry.stored import Binder, compile_stored
from pystator.stores.sql import audit_queries, compatibility_queries, registry_queries
from pystator.stores.sql.audit_queries import Actor, ChangeKind
from pystator.stores.sql.connections import autocommit, transaction
from pystator.stores.sql.engine import translate_errors
from pystator.stores.sql.registry_queries import MachineRecord, MachineVersion


@dataclass(frozen=True, slots=True, kw_only=True)
class Published:
    """The outcome of publishing a definition: the version that now is current, and whether
    it was created by this call (False: identical to the current version)."""

    name: str
    version: int
    created: bool
    checksum: str
    upgrade_policy: str = "auto"
    dry_run: bool = False
    refused: bool = False  # a dry run: True when publishing would be refused
    report: CompatibilityReport | None = None
    migration: MigrationResult | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data (what the API answers and ``--json`` prints)."""
        return {
            "name": self.name,
            "version": self.version,
            "created": self.created,
            "checksum": self.checksum,
            "upgrade_policy": self.upgrade_policy,
            "dry_run": self.dry_run,
            "refused": self.refused,
            "report": None if self.report is None else self.report.to_dict(),
            "migration": None if self.migration is None else self.migration.to_dict(),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class MachineDetail:
    """A stored machine, one of its versions (the current one unless asked), every version."""

    record: MachineRecord
    version: MachineVersion
    versions: tuple[MachineVersion, ...]

    def machine(self, bind: Binder | None = None) -> StateMachine:
        """The shown version, compiled (``bind`` attaches guards and actions)."""
        return compile_stored(self.record.name, self.version.version, self.version.definition, bind)


def _unstorable_text(value: Any, path: str) -> str | None:
    """The path of the first key or string of ``value`` holding NUL or a lone surrogate."""
    if isinstance(value, str):
        return path if "\x00" in value or not _encodable(value) else None
    if isinstance(value, Mapping):
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            found = _unstorable_text(key, where) if isinstance(key, str) else None
            found = found if found is not None else _unstorable_text(item, where)
            if found is not None:
                return found
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            found = _unstorable_text(item, f"{path}[{index}]")
            if found is not None:
                return found
    return None


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def canonical(config: Mapping[str, Any]) -> dict[str, Any]:
    """``config`` as plain JSON data (what is stored); :class:`ConfigurationError` when it holds
    values JSON cannot carry (or a database cannot store: a NUL character, a lone surrogate),
    :class:`MachineValidationError` when it is past the definition limits (checked first: a part
    used many times would be copied as many times)."""
    too_large = oversize(config)
    if too_large is not None:
        raise MachineValidationError([too_large], source="<request>")
    unstorable = _unstorable_text(config, "")
    if unstorable is not None:
        raise ConfigurationError(
            f"{unstorable or 'the definition'}: text must not contain NUL (\\u0000) or a lone "
            "surrogate (no database stores them)",
            details={"field": unstorable, "rule": "encoding"},
        )
    try:
        data = json.loads(json.dumps(config, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(f"the definition is not plain JSON data: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigurationError("the definition must be a mapping")
    return data


def require_name(config: Mapping[str, Any]) -> None:
    """A stored machine needs ``meta.machine_name`` (the engine alone would call it
    ``unnamed``): :class:`MachineValidationError` naming the path otherwise."""
    meta = config.get("meta")
    name = meta.get("machine_name") if isinstance(meta, Mapping) else None
    if not isinstance(name, str) or not name.strip():
        raise MachineValidationError(
            [ConfigProblem("meta.machine_name", "missing: a stored machine needs a name")],
            source="<request>",
        )


def checksum(config: Mapping[str, Any]) -> str:
    """sha256 of the definition's canonical JSON (key order does not matter)."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


#: The upgrade policies a version may carry.
UPGRADE_POLICIES = ("auto", "pinned")
#: The policy of a first version when none is given (later versions inherit the current one's).
DEFAULT_UPGRADE_POLICY = "auto"


def check_policy(policy: str | None) -> str | None:
    """``policy`` when it is one of :data:`UPGRADE_POLICIES` (or None)."""
    if policy is not None and policy not in UPGRADE_POLICIES:
        raise ConfigurationError(
            f"upgrade policy {policy!r}: expected one of {', '.join(UPGRADE_POLICIES)}",
            details={"field": "upgrade_policy"},
        )
    return policy


def publish(
    engine: Engine,
    config: Mapping[str, Any],
    *,
    by: Actor,
    name: str | None = None,
    clock: Clock = utc_now,
    state_map: Mapping[str, str] | None = None,
    dry_run: bool = False,
    upgrade_policy: str | None = None,
) -> Published:
    """Validate ``config`` and make it the current version of its machine (``meta.machine_name``;
    ``name``, when given, must match). A retired machine becomes active again.

    The compatibility report decides first: under the ``auto`` policy a blocking problem raises
    :class:`IncompatibleVersionError` (409) unless ``state_map`` covers it; under ``pinned``
    nothing the current entities run is taken away, so nothing blocks. Mapped entities move in
    the same transaction. ``dry_run`` stores nothing and returns the report.
    ``upgrade_policy`` None keeps the current version's (``auto`` for a first version).

    ``by`` is recorded as the version's author and in the call's audit row, written in the same
    transaction (kind ``machine.published`` when a version was stored; none for a dry run or a
    definition identical to the current version). A refused publish writes nothing.
    """
    check_policy(upgrade_policy)
    data = canonical(config)
    machine = StateMachine.from_dict(data, source="<request>")
    require_name(data)
    if name is not None and machine.name != name:
        raise ConflictError(
            f"meta.machine_name is {machine.name!r} but the machine addressed is {name!r}",
            details={"field": "meta.machine_name", "machine": name},
        )
    digest = checksum(data)
    if dry_run:
        dry = _dry_run(engine, machine, digest, state_map, upgrade_policy)
        with translate_errors("audit log"), autocommit(engine) as conn:
            _record(conn, by, dry, clock())
        return dry
    now = clock()
    with translate_errors("machine registry"), transaction(engine) as conn:
        record = registry_queries.lock_machine(conn, machine.name, now)
        current = None
        if record is not None and not record.retired and record.current_version > 0:
            current = registry_queries.get_version(conn, machine.name, record.current_version)
            if current is not None and current.checksum == digest:
                same = _unchanged(conn, machine, current, state_map, by=by.principal, now=now)
                _record(conn, by, same, now)
                return same
        policy = upgrade_policy or (
            current.upgrade_policy if current is not None else DEFAULT_UPGRADE_POLICY
        )
        previous, previous_version = current_machine(conn, machine.name)
        report = assess(
            machine.name,
            previous,
            machine,
            read_live(conn, machine.name),
            state_map=state_map,
            current_version=previous_version,
        )
        pinned = policy == "pinned" and previous_version is not None
        if not pinned and not report.ok:
            raise IncompatibleVersionError(report)
        version = registry_queries.add_version(
            conn,
            machine.name,
            definition=data,
            checksum=digest,
            created_by=by.principal,
            now=now,
            upgrade_policy=policy,
        )
        if pinned and previous_version is not None:
            compatibility_queries.stamp_unversioned(conn, machine.name, previous_version)
        moved = migrate(
            conn,
            machine,
            report,
            to_version=version,
            by=by.principal,
            now=now,
            cancel_orphans=not pinned,
        )
        published = Published(
            name=machine.name,
            version=version,
            created=True,
            checksum=digest,
            upgrade_policy=policy,
            report=report,
            migration=moved,
        )
        _record(conn, by, published, now)
    return published


def _record(conn: Connection, by: Actor, published: Published, now: datetime) -> None:
    """The audit row of a publish: the version it left current, the dry run and state map it
    was asked for, how many rows it changed (the version stored plus the entities moved)."""
    moved = len(published.migration.moved) if published.migration is not None else 0
    selection: dict[str, Any] | None = {"dry_run": True} if published.dry_run else None
    if published.report is not None and published.report.state_map:
        selection = {**(selection or {}), "state_map": dict(published.report.state_map)}
    audit_queries.record_change(
        conn,
        by,
        at=now,
        kind=ChangeKind.MACHINE_PUBLISHED if published.created else None,
        status=201 if published.created else 200,
        target=f"{published.name}@{published.version}",
        selection=selection,
        affected=(1 if published.created else 0) + moved,
    )


def _unchanged(
    conn: Connection,
    machine: StateMachine,
    current: MachineVersion,
    state_map: Mapping[str, str] | None,
    *,
    by: str,
    now: datetime,
) -> Published:
    """The definition is the current version: nothing is stored; a state map still moves the
    entities it names (how stranded or pinned entities are migrated after the fact)."""
    report = None
    moved = None
    if state_map:
        report = assess(
            machine.name,
            machine,
            machine,
            read_live(conn, machine.name),
            state_map=state_map,
            current_version=current.version,
        )
        moved = migrate(
            conn, machine, report, to_version=current.version, by=by, now=now, cancel_orphans=False
        )
    return Published(
        name=machine.name,
        version=current.version,
        created=False,
        checksum=current.checksum,
        upgrade_policy=current.upgrade_policy,
        report=report,
        migration=moved,
    )


def _dry_run(
    engine: Engine,
    machine: StateMachine,
    digest: str,
    state_map: Mapping[str, str] | None,
    upgrade_policy: str | None,
) -> Published:
    report = compatibility_report(engine, machine.name, machine, state_map=state_map)
    policy = upgrade_policy or DEFAULT_UPGRADE_POLICY
    pinned = policy == "pinned" and report.current_version is not None
    return Published(
        name=machine.name,
        version=report.current_version or 0,
        created=False,
        checksum=digest,
        upgrade_policy=policy,
        dry_run=True,
        report=report,
        refused=not pinned and not report.ok,
    )


def check_compatibility(
    engine: Engine,
    name: str,
    config: Mapping[str, Any],
    *,
    state_map: Mapping[str, str] | None = None,
) -> CompatibilityReport:
    """The compatibility report of ``config`` as the next version of ``name`` (its
    ``meta.machine_name`` must be ``name``); nothing is stored."""
    data = canonical(config)
    machine = StateMachine.from_dict(data, source="<request>")
    require_name(data)
    if machine.name != name:
        raise ConflictError(
            f"meta.machine_name is {machine.name!r} but the machine addressed is {name!r}",
            details={"field": "meta.machine_name", "machine": name},
        )
    return compatibility_report(engine, name, machine, state_map=state_map)


def list_machines(engine: Engine, *, include_retired: bool = False) -> list[MachineRecord]:
    """Stored machines by name."""
    with translate_errors("machine registry"), engine.connect() as conn:
        return registry_queries.list_machines(conn, include_retired=include_retired)


def show_machine(engine: Engine, name: str, *, version: int | None = None) -> MachineDetail:
    """A stored machine with one version (default: the current one) and the list of all;
    :class:`NotFoundError` when there is no such machine or version."""
    with translate_errors("machine registry"), engine.connect() as conn:
        record = registry_queries.get_machine(conn, name)
        versions = registry_queries.list_versions(conn, name) if record else []
    if record is None or not versions:
        raise NotFoundError(f"no stored machine named {name!r}", details={"machine": name})
    wanted = record.current_version if version is None else version
    shown = next((v for v in versions if v.version == wanted), None)
    if shown is None:
        raise NotFoundError(
            f"machine {name!r} has no version {wanted}",
            details={"machine": name, "version": wanted},
        )
    return MachineDetail(record=record, version=shown, versions=tuple(versions))


def retire(engine: Engine, name: str, *, by: Actor, clock: Clock = utc_now) -> MachineRecord:
    """Retire ``name``: producers refuse its events from now on; every version is kept.

    Refused with :class:`ConflictError` while the machine has pending events, armed timers or
    pending actions (they would have no definition to run with); :class:`NotFoundError` when
    there is no active machine of that name. The audit row (``machine.retired``, by ``by``) is
    written in the same transaction.
    """
    now = clock()
    with translate_errors("machine registry"), transaction(engine) as conn:
        record = registry_queries.get_machine(conn, name)
        if record is None or record.retired:
            raise NotFoundError(
                f"no active stored machine named {name!r}", details={"machine": name}
            )
        registry_queries.lock_machine(conn, name, now)
        work = registry_queries.pending_work(conn, name)
        if any(work.values()):
            raise ConflictError(
                f"machine {name!r} still has work to do ("
                + ", ".join(f"{count} {what.replace('_', ' ')}" for what, count in work.items())
                + "); retire it once they are done",
                details={"machine": name, **work},
            )
        registry_queries.retire(conn, name, now)
        retired = registry_queries.get_machine(conn, name)
        audit_queries.record_change(
            conn,
            by,
            at=now,
            kind=ChangeKind.MACHINE_RETIRED,
            status=200,
            target=name,
            affected=1,
        )
    assert retired is not None
    return retired


def load_document(path: Path) -> dict[str, Any]:
    """The definition document in a ``.yaml``/``.yml``/``.json`` file (not yet validated)."""
    raw = read_document(path)
    if not isinstance(raw, Mapping):
        raise ConfigurationError(f"{path}: the document must be a mapping")
    return dict(raw)


def sync_directory(
    engine: Engine,
    path: str | Path,
    *,
    by: Actor,
    clock: Clock = utc_now,
    state_map: Mapping[str, str] | None = None,
    dry_run: bool = False,
    upgrade_policy: str | None = None,
) -> list[Published]:
    """Publish every definition file at ``path`` (a directory or one file); unchanged ones keep
    their version. Every file is validated before any is stored.

    ``state_map`` applies to each machine whose definition has the mapped-to state (a target no
    machine has is a :class:`ConfigurationError`); the first refused machine stops the sync
    (those before it are published).
    """
    check_policy(upgrade_policy)
    documents = [(p, load_document(p)) for p in machine_files(path)]
    machines = []
    for file, document in documents:
        machines.append(StateMachine.from_dict(canonical(document), source=str(file)))
        require_name(document)
    mapping = dict(state_map or {})
    unknown = [new for new in mapping.values() if not any(m.has_state(new) for m in machines)]
    if unknown:
        raise ConfigurationError(
            f"state map: no machine in {str(path)!r} has the state {unknown[0]!r}",
            details={"field": "state_map", "state": unknown[0]},
        )
    return [
        publish(
            engine,
            document,
            by=by,
            clock=clock,
            state_map={o: n for o, n in mapping.items() if machine.has_state(n)},
            dry_run=dry_run,
            upgrade_policy=upgrade_policy,
        )
        for (_file, document), machine in zip(documents, machines, strict=True)
    ]


__all__ = [
    "DEFAULT_UPGRADE_POLICY",
    "UPGRADE_POLICIES",
    "MachineDetail",
    "Published",
    "canonical",
    "check_compatibility",
    "check_policy",
    "checksum",
    "list_machines",
    "load_document",
    "publish",
    "require_name",
    "retire",
    "show_machine",
    "sync_directory",
]
