"""The documented state-store protocol (``get_state`` / ``set_state`` / ``get_context``) on our
versioned stores, and adapters that let the Orchestrator drive a store offering only that.

Why it exists (and why here, not in ``stores/sql``): the seed documents that protocol for every
store, in-memory, Redis and SQL alike, while the Orchestrator and the fleet need versions.

Two directions:

* :class:`DocumentedStoreMethods` / :class:`AsyncDocumentedStoreMethods` give every store we ship
  the documented calls, written over its versioned ``load``/``save`` (so they keep the optimistic
  locking: ``set_state`` re-reads and retries on a conflict instead of overwriting blindly).
* :class:`DocumentedStoreAdapter` / :class:`AsyncDocumentedStoreAdapter` wrap a user's store that
  implements only the documented protocol, presenting the versioned ``load``/``save`` the
  Orchestrator uses. Such a store has no versions, so the adapter keeps a per-entity counter in
  memory; two processes writing the same entity through such a store are not protected from
  each other (that is the protocol's limit, not the adapter's).

Our stores key records by ``(machine, entity_id)``; the documented calls take an ``entity_id``
only. The machine is the ``machine=`` argument, else the store's ``machine_name`` (the
Orchestrator sets it on a store that has none when it is given the store).
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Mapping
from typing import Any

from pystator.fsm_core.errors import StaleVersionError
from pystator.fsm_core.records import NO_VERSION, EntityRecord, HistoryEntry
from pystator.stores.base import check_version

SET_STATE_ATTEMPTS = 20  # re-reads of set_state after concurrent writes before it gives up


def _machine_of(store: Any, machine: str | None) -> str:
    name = machine if machine is not None else getattr(store, "machine_name", None)
    if not name:
        raise ValueError(
            f"{type(store).__name__} holds entities of any machine: pass machine=… or set "
            "store.machine_name (an Orchestrator given this store sets it to its machine's name)"
        )
    return str(name)


def _next_record(
    current: EntityRecord | None,
    machine: str,
    entity_id: str,
    state: str,
    metadata: Mapping[str, Any] | None,
) -> EntityRecord:
    version = (current.version if current else NO_VERSION) + 1
    if metadata is not None:
        context: Mapping[str, Any] = dict(metadata)
    else:
        context = dict(current.context) if current else {}
    entries = dict(current.entries) if current and current.state == state else {state: version}
    return EntityRecord(
        machine=machine,
        entity_id=entity_id,
        state=state,
        context=context,
        version=version,
        entries=entries,
        created_at=current.created_at if current else None,
    )


class DocumentedStoreMethods:
    """``get_state`` / ``set_state`` / ``get_context`` (and their ``a…`` forms) over a sync
    versioned store's ``load``/``save``."""

    #: The machine the documented calls address when not given ``machine=``.
    machine_name: str | None = None

    def load(self, machine: str, entity_id: str) -> EntityRecord | None:  # pragma: no cover
        raise NotImplementedError

    def save(  # pragma: no cover
        self, record: EntityRecord, *, expected_version: int, history: HistoryEntry | None = None
    ) -> None:
        raise NotImplementedError

    def get_state(self, entity_id: str, *, machine: str | None = None) -> str | None:
        """The entity's current state, or None if it does not exist."""
        record = self.load(_machine_of(self, machine), entity_id)
        return None if record is None else record.state

    def get_context(self, entity_id: str, *, machine: str | None = None) -> dict[str, Any]:
        """The entity's stored context (empty if it does not exist)."""
        record = self.load(_machine_of(self, machine), entity_id)
        return {} if record is None else dict(record.context)

    def set_state(
        self,
        entity_id: str,
        state: str,
        *,
        metadata: Mapping[str, Any] | None = None,
        machine: str | None = None,
    ) -> None:
        """Persist ``state`` (and, when given, ``metadata`` as the entity's context).

        A versioned write: a concurrent writer makes it re-read and write again (up to
        ``SET_STATE_ATTEMPTS`` times) rather than overwrite that writer's context.
        """
        name = _machine_of(self, machine)
        for attempt in range(1, SET_STATE_ATTEMPTS + 1):
            current = self.load(name, entity_id)
            record = _next_record(current, name, entity_id, state, metadata)
            try:
                self.save(record, expected_version=record.version - 1)
                return
            except StaleVersionError:
                if attempt == SET_STATE_ATTEMPTS:
                    raise

    async def aget_state(self, entity_id: str, *, machine: str | None = None) -> str | None:
        """:meth:`get_state` for async callers (the store call itself is synchronous)."""
        return self.get_state(entity_id, machine=machine)

    async def aget_context(self, entity_id: str, *, machine: str | None = None) -> dict[str, Any]:
        """:meth:`get_context` for async callers (the store call itself is synchronous)."""
        return self.get_context(entity_id, machine=machine)

    async def aset_state(
        self,
        entity_id: str,
        state: str,
        *,
        metadata: Mapping[str, Any] | None = None,
        machine: str | None = None,
    ) -> None:
        """:meth:`set_state` for async callers (the store call itself is synchronous)."""
        self.set_state(entity_id, state, metadata=metadata, machine=machine)


class AsyncDocumentedStoreMethods:
    """``aget_state`` / ``aset_state`` / ``aget_context`` over an async versioned store."""

    machine_name: str | None = None

    async def load(self, machine: str, entity_id: str) -> EntityRecord | None:  # pragma: no cover
        raise NotImplementedError

    async def save(  # pragma: no cover
        self, record: EntityRecord, *, expected_version: int, history: HistoryEntry | None = None
    ) -> None:
        raise NotImplementedError

    async def aget_state(self, entity_id: str, *, machine: str | None = None) -> str | None:
        """The entity's current state, or None if it does not exist."""
        record = await self.load(_machine_of(self, machine), entity_id)
        return None if record is None else record.state

    async def aget_context(self, entity_id: str, *, machine: str | None = None) -> dict[str, Any]:
        """The entity's stored context (empty if it does not exist)."""
        record = await self.load(_machine_of(self, machine), entity_id)
        return {} if record is None else dict(record.context)

    async def aset_state(
        self,
        entity_id: str,
        state: str,
        *,
        metadata: Mapping[str, Any] | None = None,
        machine: str | None = None,
    ) -> None:
        """Persist ``state`` (and ``metadata`` as the context), re-reading on a conflict."""
        name = _machine_of(self, machine)
        for attempt in range(1, SET_STATE_ATTEMPTS + 1):
            current = await self.load(name, entity_id)
            record = _next_record(current, name, entity_id, state, metadata)
            try:
                await self.save(record, expected_version=record.version - 1)
                return
            except StaleVersionError:
                if attempt == SET_STATE_ATTEMPTS:
                    raise


class _Versions:
    """Per-entity write counters for a store that keeps no versions of its own."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._versions: dict[str, int] = {}
        self._entries: dict[str, dict[str, int]] = {}
        self._history: dict[str, list[HistoryEntry]] = {}

    def current(self, entity_id: str, exists: bool) -> tuple[int, dict[str, int]]:
        with self._lock:
            if not exists:
                return NO_VERSION, {}
            return self._versions.get(entity_id, 1), dict(self._entries.get(entity_id, {}))

    def claim(self, record: EntityRecord, expected_version: int) -> None:
        check_version(record, expected_version)
        with self._lock:
            known = self._versions.get(record.entity_id, NO_VERSION)
            if known not in (expected_version, NO_VERSION) and expected_version != NO_VERSION:
                raise StaleVersionError(
                    f"entity {record.entity_id!r} was written meanwhile",
                    entity_id=record.entity_id,
                    expected_version=expected_version,
                    actual_version=known,
                )

    def commit(self, record: EntityRecord, history: HistoryEntry | None) -> None:
        with self._lock:
            self._versions[record.entity_id] = record.version
            self._entries[record.entity_id] = dict(record.entries)
            if history is not None:
                self._history.setdefault(record.entity_id, []).append(history)

    def history(self, entity_id: str) -> list[HistoryEntry]:
        with self._lock:
            return list(self._history.get(entity_id, ()))


class DocumentedStoreAdapter:
    """Presents a store implementing only the documented sync protocol as a versioned store.

    ``get_context`` is optional on the wrapped store (no context is then loaded);
    ``set_state`` receives the new context as ``metadata``. History entries are kept in memory
    (the documented protocol has no history).
    """

    def __init__(self, store: Any, machine_name: str) -> None:
        self.store = store
        self.machine_name = machine_name
        self._versions = _Versions()

    def load(self, machine: str, entity_id: str) -> EntityRecord | None:
        """The wrapped store's state and context as a record (None: no such entity)."""
        state = self.store.get_state(entity_id)
        if state is None:
            return None
        getter = getattr(self.store, "get_context", None)
        context = dict(getter(entity_id) or {}) if callable(getter) else {}
        version, entries = self._versions.current(entity_id, exists=True)
        return EntityRecord(
            machine=machine,
            entity_id=entity_id,
            state=state,
            context=context,
            version=version,
            entries=entries or {state: version},
        )

    def save(
        self, record: EntityRecord, *, expected_version: int, history: HistoryEntry | None = None
    ) -> None:
        """``set_state(entity_id, state, metadata=context)`` on the wrapped store."""
        self._versions.claim(record, expected_version)
        self.store.set_state(record.entity_id, record.state, metadata=dict(record.context))
        self._versions.commit(record, history)

    def history(self, machine: str, entity_id: str) -> list[HistoryEntry]:
        """The history entries written through this adapter (in memory)."""
        return self._versions.history(entity_id)

    def close(self) -> None:
        """Close the wrapped store if it has a ``close``."""
        close = getattr(self.store, "close", None)
        if callable(close):
            close()


class AsyncDocumentedStoreAdapter:
    """Like :class:`DocumentedStoreAdapter`, for a store with ``aget_state`` / ``aset_state``
    (and optionally ``aget_context``)."""

    def __init__(self, store: Any, machine_name: str) -> None:
        self.store = store
        self.machine_name = machine_name
        self._versions = _Versions()

    async def load(self, machine: str, entity_id: str) -> EntityRecord | None:
        """The wrapped store's state and context as a record (None: no such entity)."""
        state = await self.store.aget_state(entity_id)
        if state is None:
            return None
        getter = getattr(self.store, "aget_context", None)
        context = dict(await getter(entity_id) or {}) if callable(getter) else {}
        version, entries = self._versions.current(entity_id, exists=True)
        return EntityRecord(
            machine=machine,
            entity_id=entity_id,
            state=state,
            context=context,
            version=version,
            entries=entries or {state: version},
        )

    async def save(
        self, record: EntityRecord, *, expected_version: int, history: HistoryEntry | None = None
    ) -> None:
        """``aset_state(entity_id, state, metadata=context)`` on the wrapped store."""
        self._versions.claim(record, expected_version)
        await self.store.aset_state(record.entity_id, record.state, metadata=dict(record.context))
        self._versions.commit(record, history)

    async def history(self, machine: str, entity_id: str) -> list[HistoryEntry]:
        """The history entries written through this adapter (in memory)."""
        return self._versions.history(entity_id)

    async def close(self) -> None:
        """Close the wrapped store if it has a ``close``/``aclose``."""
        for name in ("aclose", "close"):
            close = getattr(self.store, name, None)
            if callable(close):
                result = close()
                if inspect.isawaitable(result):
                    await result
                return


def as_versioned_store(store: Any, machine_name: str) -> Any:
    """``store`` itself when it has the versioned ``load``/``save``; else an adapter over its
    documented ``get_state``/``set_state`` (or ``aget_state``/``aset_state``). Anything else is
    refused with a :class:`TypeError` naming what is missing.
    """
    if callable(getattr(store, "load", None)) and callable(getattr(store, "save", None)):
        if getattr(store, "machine_name", "absent") is None:
            store.machine_name = machine_name  # our stores: documented calls address this machine
        return store
    if callable(getattr(store, "get_state", None)) and callable(getattr(store, "set_state", None)):
        return DocumentedStoreAdapter(store, machine_name)
    if callable(getattr(store, "aget_state", None)) and callable(
        getattr(store, "aset_state", None)
    ):
        return AsyncDocumentedStoreAdapter(store, machine_name)
    raise TypeError(
        f"{type(store).__name__} is not a state store: it needs get_state(entity_id) and "
        "set_state(entity_id, state, *, metadata=None) (or aget_state/aset_state), or the "
        "versioned load/save of pystator's own stores"
    )


__all__ = [
    "AsyncDocumentedStoreAdapter",
    "AsyncDocumentedStoreMethods",
    "DocumentedStoreAdapter",
    "DocumentedStoreMethods",
    "as_versioned_store",
]
