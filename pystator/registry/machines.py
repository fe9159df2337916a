"""The machines a worker or producer knows, looked up by name, with their guards and actions bound.

Machines come from the database registry (:mod:`pystator.registry.stored`, once
:meth:`MachineRegistry.attach` is called: new versions are picked up while the process runs) and
from a directory (every ``*.yaml``, ``*.yml`` and ``*.json`` file) or a single file. A name the
database registry holds is resolved there (its current version; a retired machine is unknown);
other names come from the files.

Guards and actions come from ``--app module:factory``: ``factory()`` is called once per process and
returns either an object with ``guards`` and ``actions`` attributes, a mapping with those keys, or a
``(guards, actions)`` tuple; either registry may be None. They are bound to every machine.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from pystator.fsm_core.errors import ConfigurationError, InvalidEventError
from pystator.fsm_core.machine import StateMachine
from pystator.registry.stored import StoredMachines

MACHINE_SUFFIXES = (".yaml", ".yml", ".json")


class MachineRegistry:
    """Machines by name (``meta.machine_name``)."""

    def __init__(self, machines: Iterable[StateMachine] = ()) -> None:
        self._machines: dict[str, StateMachine] = {}
        self._stored: StoredMachines | None = None
        self._guards: Any | None = None
        self._actions: Any | None = None
        for machine in machines:
            self.add(machine)

    def attach(self, stored: StoredMachines) -> None:
        """Resolve names from the database registry first (its machines get this registry's
        guards and actions bound)."""
        stored.bind = self.bind_to
        self._stored = stored

    @property
    def stored(self) -> StoredMachines | None:
        """The database registry this registry consults, if attached."""
        return self._stored

    def close_stored(self, engine: Engine) -> None:
        """Stop the database registry's background refreshes if it reads through ``engine``
        (call before disposing ``engine``)."""
        if self._stored is not None and self._stored.engine is engine:
            self._stored.close()

    def add(self, machine: StateMachine) -> None:
        """Register ``machine``; two definitions with one name are a configuration error."""
        existing = self._machines.get(machine.name)
        if existing is not None and existing is not machine:
            raise ConfigurationError(f"two machine definitions are named {machine.name!r}")
        self._machines[machine.name] = machine

    def find(self, name: str) -> StateMachine | None:
        """The machine called ``name`` (the database registry's current version first), or
        None."""
        if self._stored is not None:
            found = self._stored.lookup(name)
            if found.known:
                return found.machine
        return self._machines.get(name)

    def pinned(self, name: str, version: int) -> StateMachine | None:
        """Version ``version`` of the stored machine ``name`` when its current version is
        pinned (see :meth:`StoredMachines.pinned`), else None."""
        return None if self._stored is None else self._stored.pinned(name, version)

    def accepts_trigger(self, name: str, machine: StateMachine, trigger: str) -> bool:
        """True when ``machine`` (the current version of ``name``) accepts ``trigger``, or, for
        a pinned machine, a version its entities may still be on does."""
        if machine.accepts_trigger(trigger):
            return True
        if self._stored is None:
            return False
        return any(m.accepts_trigger(trigger) for m in self._stored.pinned_versions(name))

    def get(self, name: str) -> StateMachine:
        """The machine called ``name``; :class:`InvalidEventError` when unknown or retired."""
        machine = self.find(name)
        if machine is None:
            known = ", ".join(self.names()) or "none loaded"
            raise InvalidEventError(
                f"unknown machine {name!r} (known: {known})",
                details={"field": "machine", "rule": "unknown", "machine": name},
            )
        return machine

    def names(self) -> tuple[str, ...]:
        """Names of every machine this registry resolves, sorted."""
        if self._stored is None:
            return tuple(sorted(self._machines))
        return tuple(n for n in sorted({*self._machines, *self._stored.names()}) if self.find(n))

    def __iter__(self) -> Iterator[StateMachine]:
        return iter([m for m in map(self.find, self.names()) if m is not None])

    def __len__(self) -> int:
        return len(self.names())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.find(name) is not None

    def bind(self, guards: Any | None, actions: Any | None) -> None:
        """Bind guard and action registries to every machine (stored machines compiled later
        get them too)."""
        self._guards = guards if guards is not None else self._guards
        self._actions = actions if actions is not None else self._actions
        for machine in self._machines.values():
            if guards is not None:
                machine.bind_guards(guards)
            if actions is not None:
                machine.bind_actions(actions)

    def bind_to(self, machine: StateMachine) -> None:
        """Bind this registry's guards and actions to ``machine`` (compiled elsewhere)."""
        if self._guards is not None:
            machine.bind_guards(self._guards)
        if self._actions is not None:
            machine.bind_actions(self._actions)


def machine_files(path: str | Path) -> list[Path]:
    """The definition files at ``path`` (a directory's machine files, or the file itself)."""
    root = Path(path)
    if root.is_file():
        return [root]
    if root.is_dir():
        return sorted(p for p in root.iterdir() if p.suffix in MACHINE_SUFFIXES and p.is_file())
    raise ConfigurationError(f"machines path {str(root)!r} is neither a file nor a directory")


def load_machine(path: Path) -> StateMachine:
    """Load one definition file."""
    return StateMachine.from_file(path)


def load_app(spec: str) -> tuple[Any | None, Any | None]:
    """Import ``module:factory`` and return its ``(guards, actions)`` registries."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ConfigurationError(f"--app {spec!r}: expected 'module:factory'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigurationError(f"--app {spec!r}: cannot import {module_name!r}: {exc}") from exc
    factory = getattr(module, attr, None)
    if factory is None:
        raise ConfigurationError(f"--app {spec!r}: {module_name!r} has no attribute {attr!r}")
    produced = factory() if callable(factory) else factory
    return _registries(spec, produced)


def _registries(spec: str, produced: Any) -> tuple[Any | None, Any | None]:
    if isinstance(produced, tuple) and len(produced) == 2:
        return produced[0], produced[1]
    if isinstance(produced, Mapping):
        return produced.get("guards"), produced.get("actions")
    if hasattr(produced, "guards") or hasattr(produced, "actions"):
        return getattr(produced, "guards", None), getattr(produced, "actions", None)
    raise ConfigurationError(
        f"--app {spec!r}: the factory must return (guards, actions), a mapping with 'guards' "
        f"and 'actions', or an object with those attributes; got {type(produced).__name__}"
    )


def load_registry(machines: str | Path | None, app: str | None = None) -> MachineRegistry:
    """Load every machine at ``machines`` and bind the ``app`` factory's registries."""
    registry = MachineRegistry()
    if machines:
        for path in machine_files(machines):
            registry.add(load_machine(path))
    if app:
        guards, actions = load_app(app)
        registry.bind(guards, actions)
    return registry


__all__ = ["MachineRegistry", "load_app", "load_machine", "load_registry", "machine_files"]
