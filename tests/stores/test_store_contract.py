"""One contract, every store: memory, SQLite, PostgreSQL and Redis, sync and async."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from pystator.fsm_core.errors import StaleVersionError, StoreError, StoreUnavailableError
from pystator.fsm_core.records import NO_VERSION, EntityRecord, HistoryEntry
from pystator.stores import InMemoryStateStore, StateStore, create_store
from tests.support.store_adapters import BlockingStore

STORES = [
    "memory",
    "sqlite",
    "postgresql",
    "redis",
    "sqlite-async",
    "postgresql-async",
    "redis-async",
]
URL_FIXTURES = {
    "sqlite": "sqlite_migrated_url",
    "postgresql": "pg_migrated_url",
    "redis": "redis_url",
}
MACHINE = "orders"
PARALLEL_STATE = "active(billing=unpaid|shipping=packing)"
RICH_CONTEXT: dict[str, Any] = {
    "qty": 3,
    "price": 12.5,
    "ok": True,
    "none": None,
    "name": "Zoë ✓ \"quoted\" 'x'",
    "tags": ["a", "b", {"nested": [1, 2, {"deep": False}]}],
    "empty": {},
}


def _store_for(kind: str, request: pytest.FixtureRequest) -> Any:
    if kind == "memory":
        return InMemoryStateStore()
    backend, _, mode = kind.partition("-")
    url = str(request.getfixturevalue(URL_FIXTURES[backend]))
    if mode == "async":
        return BlockingStore(create_store(url, is_async=True))
    return create_store(url)


@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest) -> Iterator[StateStore]:
    if request.param != "memory":
        request.applymarker(pytest.mark.integration)
    instance = _store_for(request.param, request)
    try:
        yield instance
    finally:
        instance.close()


def _record(
    entity_id: str = "e-1", *, version: int = 1, state: str = "PENDING", **context: Any
) -> EntityRecord:
    return EntityRecord(
        machine=MACHINE,
        entity_id=entity_id,
        state=state,
        context=context,
        version=version,
        entries={state: version},
        created_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        updated_at=datetime(2026, 1, 2, 3, 4, 5, 600000, tzinfo=UTC),
    )


def _history(record: EntityRecord, source: str | None = None) -> HistoryEntry:
    return HistoryEntry(
        machine=record.machine,
        entity_id=record.entity_id,
        version=record.version,
        source_state=source,
        target_state=record.state,
        trigger="go",
        event_id=None,
        origin="direct",
        actions=("notify", "audit"),
        payload={"k": [1, "v"]},
        created_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
    )


def test_missing_entity_loads_as_none(store: StateStore) -> None:
    assert store.load(MACHINE, "nope") is None
    assert store.history(MACHINE, "nope") == []


def test_create_then_load_round_trips_everything(store: StateStore) -> None:
    record = EntityRecord(
        machine=MACHINE,
        entity_id="e-1",
        state=PARALLEL_STATE,
        context=RICH_CONTEXT,
        version=1,
        entries={"active": 1, "active.billing.unpaid": 1, "active.shipping.packing": 1},
        created_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        updated_at=datetime(2026, 1, 2, 3, 4, 5, 600000, tzinfo=UTC),
    )
    store.save(record, expected_version=NO_VERSION)
    assert store.load(MACHINE, "e-1") == record


def test_create_fills_missing_timestamps(store: StateStore) -> None:
    record = EntityRecord(machine=MACHINE, entity_id="e-1", state="A", version=1)
    store.save(record, expected_version=NO_VERSION)
    loaded = store.load(MACHINE, "e-1")
    assert loaded is not None and loaded.state == "A" and loaded.context == {}
    if not isinstance(store, InMemoryStateStore):
        assert loaded.created_at is not None and loaded.created_at.tzinfo is not None


def test_versioned_update(store: StateStore) -> None:
    store.save(_record(qty=1), expected_version=NO_VERSION)
    second = _record(version=2, state="OPEN", qty=2)
    store.save(second, expected_version=1)
    assert store.load(MACHINE, "e-1") == second


def test_create_of_existing_entity_is_stale_and_changes_nothing(store: StateStore) -> None:
    first = _record(qty=1)
    store.save(first, expected_version=NO_VERSION)
    with pytest.raises(StaleVersionError) as info:
        store.save(_record(qty=99), expected_version=NO_VERSION)
    assert (info.value.expected_version, info.value.actual_version) == (0, 1)
    assert info.value.entity_id == "e-1"
    assert store.load(MACHINE, "e-1") == first


def test_stale_update_never_overwrites(store: StateStore) -> None:
    store.save(_record(), expected_version=NO_VERSION)
    winner = _record(version=2, state="OPEN")
    store.save(winner, expected_version=1)
    with pytest.raises(StaleVersionError) as info:
        store.save(_record(version=2, state="LOSER"), expected_version=1)
    assert (info.value.expected_version, info.value.actual_version) == (1, 2)
    assert store.load(MACHINE, "e-1") == winner


def test_update_of_missing_entity_is_stale(store: StateStore) -> None:
    with pytest.raises(StaleVersionError) as info:
        store.save(_record(version=4), expected_version=3)
    assert info.value.actual_version == 0
    assert store.load(MACHINE, "e-1") is None


def test_history_is_written_with_the_state_and_only_then(store: StateStore) -> None:
    first = _record()
    second = _record(version=2, state="OPEN")
    store.save(first, expected_version=NO_VERSION, history=_history(first))
    store.save(second, expected_version=1, history=_history(second, "PENDING"))
    with pytest.raises(StaleVersionError):
        store.save(second, expected_version=1, history=_history(second, "PENDING"))
    assert store.history(MACHINE, "e-1") == [_history(first), _history(second, "PENDING")]


def test_entities_are_keyed_by_machine_and_id(store: StateStore) -> None:
    a = _record("same")
    b = EntityRecord(machine="other", entity_id="same", state="X", version=1, entries={"X": 1})
    store.save(a, expected_version=NO_VERSION)
    store.save(b, expected_version=NO_VERSION)
    assert store.load(MACHINE, "same") == a
    loaded = store.load("other", "same")
    assert loaded is not None and loaded.state == "X"


def test_mismatched_versions_are_caller_bugs(store: StateStore) -> None:
    with pytest.raises(ValueError, match="expected_version"):
        store.save(_record(version=3), expected_version=NO_VERSION)
    record = _record()
    wrong = dataclasses.replace(_history(record), version=7)
    with pytest.raises(ValueError, match="history entry"):
        store.save(record, expected_version=NO_VERSION, history=wrong)


SYNC_RACE_STORES = ["memory", "sqlite", "postgresql", "redis"]
RACERS = 6


@pytest.mark.parametrize("kind", SYNC_RACE_STORES)
def test_concurrent_writers_of_one_version_have_one_winner(
    kind: str, request: pytest.FixtureRequest
) -> None:
    store = _store_for(kind, request)
    try:
        store.save(_record(), expected_version=NO_VERSION)
        barrier = threading.Barrier(RACERS)
        outcomes: list[str] = []

        def write(n: int) -> None:
            barrier.wait()
            try:
                store.save(_record(version=2, state=f"S{n}"), expected_version=1)
                outcomes.append("won")
            except StaleVersionError:
                outcomes.append("stale")

        threads = [threading.Thread(target=write, args=(n,)) for n in range(RACERS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(outcomes) == ["stale"] * (RACERS - 1) + ["won"]
        loaded = store.load(MACHINE, "e-1")
        assert loaded is not None and loaded.version == 2
    finally:
        store.close()


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://postgres@127.0.0.1:1/nothing",
        "redis://127.0.0.1:1/0",
    ],
)
def test_unreachable_server_is_store_unavailable_with_cause(url: str) -> None:
    store = create_store(url)
    try:
        with pytest.raises(StoreUnavailableError) as info:
            store.load(MACHINE, "e-1")
        assert info.value.__cause__ is not None
        assert isinstance(info.value, StoreError)
    finally:
        store.close()


def test_unmigrated_database_is_a_store_error(sqlite_url: str) -> None:
    store = create_store(sqlite_url)
    try:
        with pytest.raises(StoreError) as info:
            store.load(MACHINE, "e-1")
        assert "entity_states" in str(info.value)
    finally:
        store.close()
