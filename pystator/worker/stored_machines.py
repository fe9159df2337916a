"""Machines from the database registry, as a worker or producer process sees them.

The process keeps each machine's current version compiled; at most every
``PYSTATOR_REGISTRY_REFRESH_SECONDS`` (2 s) a lookup first asks the database for the current
version numbers (one small query) and compiles any version it has not seen. So a version
published through the API or ``pystator machines sync`` is picked up by every running process
within that interval, without a restart, and a lookup in between costs two dict reads.

One thread refreshes at a time; others keep using what they have meanwhile (only the first
refresh of a process is waited for). A failed refresh (database down) keeps the machines
already known and is tried again after the interval.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Engine

from pystator.fsm_core.errors import FSMError, StoreError
from pystator.fsm_core.machine import StateMachine
from pystator.logging import get_logger
from pystator.settings import DEFAULT_REGISTRY_REFRESH_SECONDS
from pystator.stores.sql import machine_queries
from pystator.stores.sql.engine import translate_errors

log = get_logger("pystator.registry")

#: Called on every machine compiled from the registry (binds the process's guards and actions).
Binder = Callable[[StateMachine], None]


def compile_stored(
    name: str, version: int, definition: Mapping[str, Any], bind: Binder | None = None
) -> StateMachine:
    """A stored definition compiled, stamped with its registry version, with ``bind`` applied."""
    machine = StateMachine.from_dict(definition, source=f"registry:{name}@{version}")
    machine.registry_version = version
    if bind is not None:
        bind(machine)
    return machine


@dataclass(frozen=True, slots=True)
class Lookup:
    """What the registry says about a name: ``known`` False when it holds no such machine;
    ``machine`` None when it is retired (or its current version would not compile)."""

    known: bool
    machine: StateMachine | None = None


class StoredMachines:
    """The database registry's current machines, compiled once per version (thread-safe)."""

    def __init__(
        self,
        engine: Engine,
        *,
        refresh_seconds: float = DEFAULT_REGISTRY_REFRESH_SECONDS,
        bind: Binder | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.engine = engine
        self.refresh_seconds = refresh_seconds
        self.bind = bind
        self._monotonic = monotonic
        self._heads: dict[str, int | None] = {}
        self._current: dict[str, StateMachine | None] = {}
        self._checked_at: float | None = None
        self._lock = threading.Lock()

    def lookup(self, name: str) -> Lookup:
        """The current version of ``name`` (refreshing first when the interval has passed)."""
        self._refresh_if_due()
        if name not in self._heads:
            return Lookup(known=False)
        return Lookup(known=True, machine=self._current.get(name))

    def names(self) -> tuple[str, ...]:
        """Names of the active stored machines."""
        self._refresh_if_due()
        return tuple(sorted(n for n, m in self._current.items() if m is not None))

    def invalidate(self) -> None:
        """Make the next lookup refresh (after this process published a version itself)."""
        self._checked_at = None

    def refresh(self) -> None:
        """Read the current versions now and compile the new ones."""
        try:
            with translate_errors("machine registry"), self.engine.connect() as conn:
                heads = machine_queries.heads(conn)
                fresh = {
                    name: machine_queries.get_version(conn, name, version)
                    for name, version in heads.items()
                    if version is not None and not self._has(name, version)
                }
        except StoreError as exc:
            log.warning("registry_refresh_failed", error=str(exc))
            return
        current = {name: m for name, m in self._current.items() if heads.get(name) is not None}
        for name, row in fresh.items():
            current[name] = None if row is None else self._compile(row)
        for name, version in heads.items():
            if version is None:
                current[name] = None
        self._heads, self._current = heads, current

    def _has(self, name: str, version: int) -> bool:
        machine = self._current.get(name)
        return machine is not None and machine.registry_version == version

    def _compile(self, row: machine_queries.MachineVersion) -> StateMachine | None:
        try:
            return compile_stored(row.name, row.version, row.definition, self.bind)
        except FSMError as exc:  # validated when published; a newer engine may disagree
            log.error(
                "registry_version_invalid", machine=row.name, version=row.version, error=str(exc)
            )
            return None

    def _refresh_if_due(self) -> None:
        checked = self._checked_at
        if checked is not None and self._monotonic() - checked < self.refresh_seconds:
            return
        # Only a process's first refresh is waited for; later ones run in one thread while the
        # others go on with the versions they have.
        if not self._lock.acquire(blocking=checked is None):
            return
        try:
            checked = self._checked_at
            if checked is None or self._monotonic() - checked >= self.refresh_seconds:
                self.refresh()
                self._checked_at = self._monotonic()
        finally:
            self._lock.release()


__all__ = ["Binder", "Lookup", "StoredMachines", "compile_stored"]
