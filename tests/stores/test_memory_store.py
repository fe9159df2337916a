"""InMemoryStateStore specifics (the shared contract lives in tests/stores/test_store_contract.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from pystator.fsm_core.errors import StaleVersionError
from pystator.fsm_core.records import EntityRecord, HistoryEntry
from pystator.stores import InMemoryStateStore, StateStore, create_store


def _record(version: int = 1, **context: object) -> EntityRecord:
    return EntityRecord(machine="m", entity_id="e", state="A", context=context, version=version)


def test_satisfies_the_sync_protocol_only() -> None:
    store = InMemoryStateStore()
    assert isinstance(store, StateStore)
    assert create_store("memory://").load("m", "e") is None
    with pytest.raises(ValueError):
        create_store("memory://", is_async=True)


def test_stored_values_are_isolated_from_callers() -> None:
    store = InMemoryStateStore()
    context = {"items": [1, 2]}
    store.save(_record(items=context["items"]), expected_version=0)
    context["items"].append(3)
    loaded = store.load("m", "e")
    assert loaded is not None and loaded.context == {"items": [1, 2]}
    loaded.context["items"].append(4)  # type: ignore[index]
    again = store.load("m", "e")
    assert again is not None and again.context == {"items": [1, 2]}


def test_history_copies_and_clear() -> None:
    store = InMemoryStateStore()
    record = _record()
    entry = HistoryEntry(
        machine="m",
        entity_id="e",
        version=1,
        source_state=None,
        target_state="A",
        trigger="t",
        event_id=None,
        origin="direct",
        actions=(),
        payload={"x": [1]},
        created_at=datetime.now(UTC),
    )
    store.save(record, expected_version=0, history=entry)
    assert store.entity_ids("m") == ["e"]
    assert store.history("m", "e") == [entry]
    with pytest.raises(StaleVersionError):
        store.save(record, expected_version=0)
    store.clear()
    assert store.load("m", "e") is None and store.history("m", "e") == []
