"""The machine-definition pipeline: parse once, keep the definition, build machines from it.

The documented modules ``pystator.machine_parser``, ``pystator.machine_store`` and
``pystator.machine_builder`` re-export these names. There is one model: a
:class:`MachineDefinition` is the engine's own parsed definition
(:class:`pystator.fsm_core.definition.MachineDefinition`, validated completely), carrying the
document it was parsed from (``definition.document``) so a store can keep it. Building a
machine compiles that same object; nothing is parsed twice.

Definition stores (:class:`MachineStoreClient`) keep definitions by name, each version numbered
1, 2, 3, … ; saving a definition identical to the current version stores nothing.
:class:`InMemoryMachineStore` lives in a dict; the database one,
:class:`~pystator.registry.definition_store.SQLAlchemyMachineStore`, is the machine registry
(``machine_registry`` / ``machine_versions``) that the fleet and the HTTP API read.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from pystator.fsm_core.actions import ActionRegistry
from pystator.fsm_core.definition import MachineDefinition
from pystator.fsm_core.errors import NotFoundError
from pystator.fsm_core.guards import GuardRegistry
from pystator.fsm_core.loading import load_definition, read_document
from pystator.fsm_core.machine import StateMachine
from pystator.fsm_core.yaml_loader import parse_yaml


class MachineNotFoundError(NotFoundError):
    """A definition store holds no machine of that name (or not that version)."""


def parse_machine(
    config: Mapping[str, Any] | str, *, source: str | None = None
) -> MachineDefinition:
    """Parse and validate ``config`` (a mapping, or YAML/JSON text) into a
    :class:`MachineDefinition`; :class:`~pystator.errors.MachineValidationError` lists every
    problem with its path."""
    raw: Any = parse_yaml(config, source=source) if isinstance(config, str) else config
    return load_definition(raw, source=source)


def parse_machine_file(path: str | Path) -> MachineDefinition:
    """Parse and validate a ``.yaml``/``.yml``/``.json`` definition file."""
    return load_definition(read_document(path), source=str(path))


def definition_checksum(definition: MachineDefinition) -> str:
    """sha256 of the definition's document as canonical JSON (key order does not matter)."""
    text = json.dumps(definition.document, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def build_machine(
    definition: MachineDefinition,
    *,
    guards: GuardRegistry | None = None,
    actions: ActionRegistry | None = None,
    hooks: tuple[object, ...] = (),
) -> StateMachine:
    """A :class:`~pystator.StateMachine` compiled from ``definition``, with ``guards`` and
    ``actions`` bound (shared by reference: later registrations count)."""
    machine = StateMachine(definition, hooks=hooks)
    if guards is not None:
        machine.bind_guards(guards)
    if actions is not None:
        machine.bind_actions(actions)
    return machine


@runtime_checkable
class MachineStoreClient(Protocol):
    """Where definitions are kept, by machine name and version number (1, 2, 3, …)."""

    def save(self, definition: MachineDefinition) -> int:
        """Store ``definition`` as the new current version of its machine and return its
        number; identical to the current version: store nothing, return that number."""
        ...

    def get(self, name: str, version: int | None = None) -> MachineDefinition:
        """Version ``version`` of ``name`` (default: the current one);
        :class:`MachineNotFoundError` when there is none."""
        ...

    def list_machines(self) -> list[str]:
        """Names of the stored machines."""
        ...

    def list_versions(self, name: str) -> list[int]:
        """Version numbers of ``name``, oldest first (empty when unknown)."""
        ...


class InMemoryMachineStore:
    """A :class:`MachineStoreClient` in a dict (tests, scripts; thread-safe)."""

    def __init__(self) -> None:
        self._versions: dict[str, list[tuple[str, MachineDefinition]]] = {}
        self._lock = threading.Lock()

    def save(self, definition: MachineDefinition) -> int:
        """See :meth:`MachineStoreClient.save`."""
        digest = definition_checksum(definition)
        with self._lock:
            versions = self._versions.setdefault(definition.name, [])
            if versions and versions[-1][0] == digest:
                return len(versions)
            versions.append((digest, definition))
            return len(versions)

    def get(self, name: str, version: int | None = None) -> MachineDefinition:
        """See :meth:`MachineStoreClient.get`."""
        with self._lock:
            versions = list(self._versions.get(name, ()))
        if not versions:
            raise MachineNotFoundError(
                f"no stored machine named {name!r}", details={"machine": name}
            )
        wanted = len(versions) if version is None else version
        if not 1 <= wanted <= len(versions):
            raise MachineNotFoundError(
                f"machine {name!r} has no version {wanted}",
                details={"machine": name, "version": wanted},
            )
        return versions[wanted - 1][1]

    def list_machines(self) -> list[str]:
        """See :meth:`MachineStoreClient.list_machines`."""
        with self._lock:
            return sorted(self._versions)

    def list_versions(self, name: str) -> list[int]:
        """See :meth:`MachineStoreClient.list_versions`."""
        with self._lock:
            return list(range(1, len(self._versions.get(name, ())) + 1))


def build_machine_from_store(
    store: MachineStoreClient,
    name: str,
    version: int | None = None,
    *,
    guards: GuardRegistry | None = None,
    actions: ActionRegistry | None = None,
) -> StateMachine:
    """The machine ``name`` (version ``version``, default the current one) built from
    ``store``; :class:`MachineNotFoundError` when the store has no such machine."""
    machine = build_machine(store.get(name, version), guards=guards, actions=actions)
    machine.registry_version = version if version is not None else store.list_versions(name)[-1]
    return machine


__all__ = [
    "InMemoryMachineStore",
    "MachineDefinition",
    "MachineNotFoundError",
    "MachineStoreClient",
    "build_machine",
    "build_machine_from_store",
    "definition_checksum",
    "parse_machine",
    "parse_machine_file",
]
