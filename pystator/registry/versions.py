"""The machine registry's operations: publish a version, list, show, retire, sync a directory.

``pystator machines …`` and the HTTP API's ``/api/v1/machines`` routes call these. A definition
is validated completely before anything is stored (:class:`MachineValidationError` lists every
problem with its path). Versions are immutable and numbered 1, 2, 3, … per machine; publishing a
definition identical to the current version (same canonical JSON) stores nothing and returns
that version.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

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
from pystator.registry.machines import machine_files
from pystator.registry.stored import Binder, compile_stored
from pystator.stores.sql import registry_queries
from pystator.stores.sql.connections import transaction
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


def publish(
    engine: Engine,
    config: Mapping[str, Any],
    *,
    by: str,
    name: str | None = None,
    clock: Clock = utc_now,
) -> Published:
    """Validate ``config`` and make it the current version of its machine (``meta.machine_name``;
    ``name``, when given, must match). A retired machine becomes active again."""
    data = canonical(config)
    machine = StateMachine.from_dict(data, source="<request>")
    require_name(data)
    if name is not None and machine.name != name:
        raise ConflictError(
            f"meta.machine_name is {machine.name!r} but the machine addressed is {name!r}",
            details={"field": "meta.machine_name", "machine": name},
        )
    digest = checksum(data)
    now = clock()
    with translate_errors("machine registry"), transaction(engine) as conn:
        record = registry_queries.lock_machine(conn, machine.name, now)
        if record is not None and not record.retired and record.current_version > 0:
            current = registry_queries.get_version(conn, machine.name, record.current_version)
            if current is not None and current.checksum == digest:
                return Published(
                    name=machine.name, version=current.version, created=False, checksum=digest
                )
        version = registry_queries.add_version(
            conn, machine.name, definition=data, checksum=digest, created_by=by, now=now
        )
    return Published(name=machine.name, version=version, created=True, checksum=digest)


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


def retire(engine: Engine, name: str, *, clock: Clock = utc_now) -> MachineRecord:
    """Retire ``name``: producers refuse its events from now on; every version is kept.

    Refused with :class:`ConflictError` while the machine has pending events, armed timers or
    pending actions (they would have no definition to run with); :class:`NotFoundError` when
    there is no active machine of that name.
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
    assert retired is not None
    return retired


def load_document(path: Path) -> dict[str, Any]:
    """The definition document in a ``.yaml``/``.yml``/``.json`` file (not yet validated)."""
    raw = read_document(path)
    if not isinstance(raw, Mapping):
        raise ConfigurationError(f"{path}: the document must be a mapping")
    return dict(raw)


def sync_directory(
    engine: Engine, path: str | Path, *, by: str, clock: Clock = utc_now
) -> list[Published]:
    """Publish every definition file at ``path`` (a directory or one file); unchanged ones keep
    their version. Every file is validated before any is stored."""
    documents = [(p, load_document(p)) for p in machine_files(path)]
    for file, document in documents:
        StateMachine.from_dict(canonical(document), source=str(file))
        require_name(document)
    return [publish(engine, document, by=by, clock=clock) for _file, document in documents]


__all__ = [
    "MachineDetail",
    "Published",
    "canonical",
    "checksum",
    "list_machines",
    "load_document",
    "publish",
    "require_name",
    "retire",
    "show_machine",
    "sync_directory",
]
