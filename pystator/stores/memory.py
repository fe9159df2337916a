"""An in-process state store: a dict under a lock. For tests, demos and single-process apps."""

from __future__ import annotations

import copy
import dataclasses
import threading
from typing import Any

from pystator.fsm_core.errors import StaleVersionError
from pystator.fsm_core.records import NO_VERSION, EntityRecord, HistoryEntry
from pystator.stores.base import check_history, check_version
from pystator.stores.documented import DocumentedStoreMethods

_Key = tuple[str, str]


class InMemoryStateStore(DocumentedStoreMethods):
    """Thread-safe in-memory :class:`~pystator.stores.base.VersionedStateStore`.

    Records and history are copied on the way in and out, so callers can never mutate what is
    stored. Everything is lost when the process exits.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: dict[_Key, EntityRecord] = {}
        self._history: dict[_Key, list[HistoryEntry]] = {}

    def load(self, machine: str, entity_id: str) -> EntityRecord | None:
        """The stored record of the entity, or None."""
        with self._lock:
            record = self._records.get((machine, entity_id))
        return None if record is None else _copy(record)

    def save(
        self,
        record: EntityRecord,
        *,
        expected_version: int,
        history: HistoryEntry | None = None,
    ) -> None:
        """Write ``record`` if the stored version is ``expected_version`` (0 = create)."""
        check_version(record, expected_version)
        check_history(record, history)
        key = (record.machine, record.entity_id)
        stored_record = _copy(record)
        stored_history = None if history is None else _copy_history(history)
        with self._lock:
            current = self._records.get(key)
            actual = NO_VERSION if current is None else current.version
            if actual != expected_version:
                raise StaleVersionError(
                    f"entity {record.entity_id!r} of machine {record.machine!r}: expected "
                    f"version {expected_version}, found {actual}",
                    entity_id=record.entity_id,
                    expected_version=expected_version,
                    actual_version=actual,
                )
            self._records[key] = stored_record
            if stored_history is not None:
                self._history.setdefault(key, []).append(stored_history)

    def history(self, machine: str, entity_id: str) -> list[HistoryEntry]:
        """Every history entry of the entity, oldest version first."""
        with self._lock:
            entries = list(self._history.get((machine, entity_id), ()))
        return [_copy_history(entry) for entry in entries]

    def entity_ids(self, machine: str) -> list[str]:
        """Ids of every stored entity of ``machine`` (sorted)."""
        with self._lock:
            return sorted(e for m, e in self._records if m == machine)

    def clear(self) -> None:
        """Forget every record and history entry."""
        with self._lock:
            self._records.clear()
            self._history.clear()

    def close(self) -> None:
        """Nothing to release."""


_IMMUTABLE = (str, int, float, bool, type(None))


def _copy_value(value: Any) -> Any:
    """A deep copy of JSON-like data (fast path), falling back to :func:`copy.deepcopy`."""
    if isinstance(value, _IMMUTABLE):
        return value
    if isinstance(value, dict):
        return {k: _copy_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy_value(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_copy_value(v) for v in value)
    return copy.deepcopy(value)


def _copy(record: EntityRecord) -> EntityRecord:
    return EntityRecord(
        machine=record.machine,
        entity_id=record.entity_id,
        state=record.state,
        context=_copy_value(dict(record.context)),
        version=record.version,
        entries=dict(record.entries),
        created_at=record.created_at,
        updated_at=record.updated_at,
    )


def _copy_history(entry: HistoryEntry) -> HistoryEntry:
    if entry.payload is None:
        return entry  # every other field is immutable
    return dataclasses.replace(entry, payload=_copy_value(dict(entry.payload)))


__all__ = ["InMemoryStateStore"]
