"""Machines from the database registry, as a worker or producer process sees them.

The process keeps each machine's current version compiled. It loads them when it starts
(:meth:`StoredMachines.refresh`, called by whoever builds it); after that, a lookup made more than
``PYSTATOR_REGISTRY_REFRESH_SECONDS`` (2 s) after the last refresh starts one in a background
thread — one small query for the current version numbers, and the compilation of any version not
seen yet — and answers with what it has meanwhile. So a version published through the API or
``pystator machines sync`` is picked up by every running process within about that interval,
without a restart, and a lookup costs two dict reads.

A lookup never touches the database itself: the processor looks machines up inside its
transaction, and a second connection taken there could wait on that very transaction (SQLite's
single writer) or on a pool the transaction's own thread is holding. A failed refresh (database
down) keeps the machines already known and is tried again after the interval.

For a machine whose current version is ``pinned``, the refresh also keeps every older version
compiled (:meth:`StoredMachines.pinned`): its entities apply their events with the version they
are on until a state map migrates them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Engine

from pystator.config.logs import get_logger
from pystator.config.settings import DEFAULT_REGISTRY_REFRESH_SECONDS
from pystator.fsm_core.errors import FSMError, StoreError
from pystator.fsm_core.machine import StateMachine
from pystator.stores.sql import registry_queries
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
        self.monotonic = monotonic  # measures the refresh interval (tests move it)
        self._heads: dict[str, int | None] = {}
        self._current: dict[str, StateMachine | None] = {}
        self._pinned: dict[str, dict[int, StateMachine]] = {}
        self._checked_at: float | None = None
        self._lock = threading.Lock()  # held while a background refresh runs
        self._closed = False

    def lookup(self, name: str) -> Lookup:
        """The current version of ``name`` (refreshing first when the interval has passed)."""
        self._refresh_if_due()
        if name not in self._heads:
            return Lookup(known=False)
        return Lookup(known=True, machine=self._current.get(name))

    def pinned(self, name: str, version: int) -> StateMachine | None:
        """Version ``version`` of ``name`` when the machine's current version is pinned (None
        otherwise, or when that version is not known yet)."""
        return self._pinned.get(name, {}).get(version)

    def pinned_versions(self, name: str) -> tuple[StateMachine, ...]:
        """Every version of ``name`` kept for its pinned entities (empty unless pinned)."""
        return tuple(self._pinned.get(name, {}).values())

    def names(self) -> tuple[str, ...]:
        """Names of the active stored machines."""
        self._refresh_if_due()
        return tuple(sorted(n for n, m in self._current.items() if m is not None))

    def refresh(self) -> None:
        """Read the current versions now and compile the new ones (in the calling thread: call
        it outside any transaction, e.g. at start-up or right after publishing a version)."""
        self._checked_at = self.monotonic()
        try:
            with translate_errors("machine registry"), self.engine.connect() as conn:
                heads = registry_queries.heads(conn)
                fresh = {
                    name: registry_queries.get_version(conn, name, version)
                    for name, version in heads.items()
                    if version is not None and not self._has(name, version)
                }
                pinned_rows = {
                    name: [
                        row
                        for row in registry_queries.list_versions(conn, name)
                        if row.version not in self._pinned.get(name, {})
                    ]
                    for name in registry_queries.pinned_machines(conn)
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
        pinned: dict[str, dict[int, StateMachine]] = {}
        for name, rows in pinned_rows.items():
            known = dict(self._pinned.get(name, {}))
            for row in rows:
                machine = self._compile(row)
                if machine is not None:
                    known[row.version] = machine
            pinned[name] = known
        self._heads, self._current, self._pinned = heads, current, pinned

    def _has(self, name: str, version: int) -> bool:
        machine = self._current.get(name)
        return machine is not None and machine.registry_version == version

    def _compile(self, row: registry_queries.MachineVersion) -> StateMachine | None:
        try:
            return compile_stored(row.name, row.version, row.definition, self.bind)
        except FSMError as exc:  # validated when published; a newer engine may disagree
            log.error(
                "registry_version_invalid", machine=row.name, version=row.version, error=str(exc)
            )
            return None

    def close(self) -> None:
        """Start no more background refreshes and wait for the one running, if any.

        Call it before disposing the engine: a refresh still running then would return its
        connection to the disposed pool, which never closes it.
        """
        self._closed = True
        with self._lock:
            pass

    def _refresh_if_due(self) -> None:
        checked = self._checked_at
        if checked is not None and self.monotonic() - checked < self.refresh_seconds:
            return
        if not self._lock.acquire(blocking=False):
            return  # a refresh is running
        if self._closed:  # checked under the lock, so close() never misses a thread started
            self._lock.release()
            return
        self._checked_at = self.monotonic()
        try:
            threading.Thread(
                target=self._refresh_and_release, name="pystator-registry-refresh", daemon=True
            ).start()
        except BaseException:
            self._lock.release()
            raise

    def _refresh_and_release(self) -> None:
        try:
            self.refresh()
        except Exception as exc:  # never let the thread die silently with the lock held
            log.error("registry_refresh_crashed", error=f"{type(exc).__name__}: {exc}")
        finally:
            self._lock.release()


__all__ = ["Binder", "Lookup", "StoredMachines", "compile_stored"]
