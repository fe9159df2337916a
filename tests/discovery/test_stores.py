"""One contract for every discovery store: in memory, SQLite and PostgreSQL; and the factory."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from pystator import migrations
from pystator.config.settings import Settings
from pystator.discovery import (
    DiscoveryDraft,
    DiscoveryStore,
    DraftMode,
    InferenceEngine,
    InferenceThresholds,
    InMemoryDiscoveryStore,
    ObservedStateEvent,
    PostgresDiscoveryStore,
    SQLiteDiscoveryStore,
    create_discovery_store,
)
from pystator.fsm_core.errors import SettingsError, StoreError
from tests.discovery.test_candidate import MACHINE, observations

T0 = datetime(2026, 3, 25, 10, 0, tzinfo=UTC)


@pytest.fixture(
    params=["memory", "sqlite", pytest.param("postgresql", marks=pytest.mark.integration)]
)
def store(request: pytest.FixtureRequest) -> Iterator[DiscoveryStore]:
    if request.param == "memory":
        made: DiscoveryStore = InMemoryDiscoveryStore()
    elif request.param == "sqlite":
        made = create_discovery_store(str(request.getfixturevalue("sqlite_url")))
    else:
        made = create_discovery_store(str(request.getfixturevalue("pg_migrated_url")))
    yield made
    made.close()


def event(entity: str, state: str, minute: float, **extra: object) -> ObservedStateEvent:
    return ObservedStateEvent(
        entity_id=entity,
        machine_name=MACHINE,
        state=state,
        observed_at=T0 + timedelta(minutes=minute),
        source="test",
        **extra,  # type: ignore[arg-type]
    )


def runs(store: DiscoveryStore, **kwargs: object) -> dict[str, list[tuple[object, ...]]]:
    found = store.observation_runs(MACHINE, **kwargs)  # type: ignore[arg-type]
    return {entity: [(r[0], r[2], r[3], r[4]) for r in rows] for entity, rows in found}


def test_observations_come_back_per_entity_in_time_then_arrival_order(
    store: DiscoveryStore,
) -> None:
    added = store.add_observations(
        MACHINE,
        [
            event("b", "X", 5),
            event("a", "C", 2, trigger="close", previous_state="B"),
            event("a", "A", 0),
            event("a", "B", 1),
            event("b", "Y", 5),  # same time as X: after it, by arrival
        ],
    )
    assert added == 5
    assert store.add_observations(MACHINE, [event("a", "Z", 0.5)]) == 1  # late, a later write
    assert runs(store) == {
        "a": [
            (T0, "A", None, None),
            (T0 + timedelta(minutes=0.5), "Z", None, None),
            (T0 + timedelta(minutes=1), "B", None, None),
            (T0 + timedelta(minutes=2), "C", "close", "B"),
        ],
        "b": [
            (T0 + timedelta(minutes=5), "X", None, None),
            (T0 + timedelta(minutes=5), "Y", None, None),
        ],
    }
    assert runs(store, entity_ids=["b", "nobody"]) == {"b": runs(store)["b"]}
    assert store.count_observations(MACHINE) == 6
    assert store.observed_machines() == [MACHINE]
    assert store.observed_entities(MACHINE, limit=1) == ["a"]
    assert store.add_observations(MACHINE, []) == 0


def test_times_in_other_zones_are_ordered_as_instants(store: DiscoveryStore) -> None:
    plus_two = timezone(timedelta(hours=2))
    store.add_observations(
        MACHINE,
        [
            event("a", "A", 0),  # 10:00 UTC
            ObservedStateEvent(  # 11:30+02:00 is 09:30 UTC: before A
                entity_id="a",
                machine_name=MACHINE,
                state="B",
                observed_at=datetime(2026, 3, 25, 11, 30, tzinfo=plus_two),
                source="test",
            ),
        ],
    )
    assert runs(store)["a"] == [
        (T0 - timedelta(minutes=30), "B", None, None),
        (T0, "A", None, None),
    ]


def test_arrival_order_is_kept_across_observations_with_and_without_ids(
    store: DiscoveryStore,
) -> None:
    store.add_observations(
        MACHINE,
        [
            event("a", "A", 0),
            event("a", "B", 0, source_event_id="1"),
            event("a", "C", 0),
            event("a", "D", 0, source_event_id="2"),
        ],
    )
    assert [state for _at, state, _t, _p in runs(store)["a"]] == ["A", "B", "C", "D"]


def test_a_source_event_id_is_stored_once_per_machine_and_source(store: DiscoveryStore) -> None:
    first = [event("a", "A", 0, source_event_id="e-1"), event("a", "B", 1, source_event_id="e-2")]
    assert store.add_observations(MACHINE, first) == 2
    repeat = [event("a", "B", 1, source_event_id="e-2"), event("a", "C", 2, source_event_id="e-3")]
    assert store.add_observations(MACHINE, repeat) == 1
    other = ObservedStateEvent(
        entity_id="a",
        machine_name="other",
        state="A",
        observed_at=T0,
        source="test",
        source_event_id="e-1",
    )
    assert store.add_observations("other", [other]) == 1
    assert store.count_observations(MACHINE) == 3


def test_candidates_are_numbered_per_machine(store: DiscoveryStore) -> None:
    engine = InferenceEngine(store, thresholds=InferenceThresholds())
    engine.record_observations(MACHINE, observations())
    first = engine.build_candidate(MACHINE, created_by="ana")
    second = engine.build_candidate(MACHINE, entity_ids=["o-1", "o-2"])
    assert (first.version, second.version) == (1, 2)
    assert store.get_candidate(MACHINE) == second
    assert store.get_candidate(MACHINE, 1) == first
    assert store.get_candidate(MACHINE, 9) is None
    assert store.get_candidate("other") is None
    assert [c.version for c in store.list_candidates(MACHINE)] == [2, 1]
    # what was stored is what was built, dropped edges and all
    stored = store.get_candidate(MACHINE, 1)
    assert stored is not None
    assert (stored.config, stored.edges, stored.summary()) == (
        first.config,
        first.edges,
        first.summary(),
    )


def test_concurrent_builds_get_distinct_numbers(store: DiscoveryStore) -> None:
    engine = InferenceEngine(store, thresholds=InferenceThresholds())
    engine.record_observations(MACHINE, observations())
    versions: list[int] = []
    failures: list[BaseException] = []

    def build() -> None:
        try:
            versions.append(engine.build_candidate(MACHINE).version)
        except BaseException as exc:  # reported below
            failures.append(exc)

    threads = [threading.Thread(target=build) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert failures == []
    assert sorted(versions) == [1, 2, 3, 4]


def test_drafts(store: DiscoveryStore) -> None:
    draft = store.create_draft(
        DiscoveryDraft(
            machine_name=MACHINE,
            title="t",
            selected_entity_ids=("a", "b"),
            thresholds=InferenceThresholds(min_edge_count=3, min_confidence=0.25),
            mode=DraftMode.MANUAL,
            manual_edge_selection=(("A", "B"),),
        )
    )
    assert draft.id > 0
    assert store.get_draft(draft.id) == draft
    changed = DiscoveryDraft(
        id=draft.id,
        machine_name="ignored",  # a draft keeps its machine
        title="t2",
        last_built_version=4,
        created_at=T0,  # and its creation time
    )
    assert store.update_draft(changed) is True
    stored = store.get_draft(draft.id)
    assert stored is not None
    assert (stored.machine_name, stored.title, stored.last_built_version) == (MACHINE, "t2", 4)
    assert (stored.selected_entity_ids, stored.mode) == ((), DraftMode.INFERENCE)
    assert stored.created_at == draft.created_at
    assert store.update_draft(DiscoveryDraft(id=draft.id + 100, machine_name=MACHINE)) is False
    other = store.create_draft(DiscoveryDraft(machine_name="other"))
    assert [d.id for d in store.list_drafts(MACHINE)] == [draft.id]
    assert store.delete_draft(draft.id) is True
    assert store.delete_draft(draft.id) is False
    assert store.get_draft(draft.id) is None
    assert [d.id for d in store.list_drafts("other")] == [other.id]


# --- the factory ---------------------------------------------------------------------------------


def test_the_factory_picks_the_backend_from_the_url(sqlite_url: str) -> None:
    assert isinstance(create_discovery_store("memory://"), InMemoryDiscoveryStore)
    assert migrations.current(sqlite_url) is None
    made = create_discovery_store(sqlite_url)
    try:
        assert isinstance(made, SQLiteDiscoveryStore)
        assert migrations.current(sqlite_url) == migrations.head()  # the embedded file is migrated
    finally:
        made.close()
    with pytest.raises(SettingsError, match="unsupported backend 'mongodb'"):
        create_discovery_store("mongodb://localhost/x")


def test_the_factory_falls_back_to_the_main_database(sqlite_url: str) -> None:
    made = create_discovery_store(settings=Settings(database_url=sqlite_url))
    try:
        assert isinstance(made, SQLiteDiscoveryStore)
        assert str(made.engine.url) == sqlite_url
    finally:
        made.close()
    memory = create_discovery_store(
        settings=Settings(database_url=sqlite_url, discovery_database_url="memory://")
    )
    assert isinstance(memory, InMemoryDiscoveryStore)


def test_the_engine_from_app_config_uses_the_configured_thresholds(sqlite_url: str) -> None:
    settings = Settings(
        database_url="sqlite:///unused.db",
        discovery_database_url=sqlite_url,
        discovery_min_edge_count=7,
        discovery_min_confidence=0.3,
    )
    engine = InferenceEngine.from_app_config(settings=settings)
    try:
        assert engine.thresholds == InferenceThresholds(min_edge_count=7, min_confidence=0.3)
        given = InferenceThresholds(min_edge_count=1, min_confidence=0.0)
        assert (
            InferenceEngine.from_app_config(settings=settings, thresholds=given).thresholds == given
        )
    finally:
        engine.observations.close()  # type: ignore[attr-defined]


@pytest.mark.integration
def test_postgresql_must_be_migrated_first(pg_url: str) -> None:
    with pytest.raises(StoreError, match="not at the newest migration"):
        create_discovery_store(pg_url)
    migrations.upgrade(pg_url)
    made = create_discovery_store(pg_url)
    try:
        assert isinstance(made, PostgresDiscoveryStore)
    finally:
        made.close()


@pytest.mark.integration
def test_a_failing_database_is_a_store_error(pg_migrated_url: str) -> None:
    made = create_discovery_store(pg_migrated_url)
    assert isinstance(made, PostgresDiscoveryStore)
    try:
        with made.engine.begin() as conn:
            conn.execute(sa.text("DROP TABLE discovery_observations"))
        with pytest.raises(StoreError, match="discovery store failed"):
            made.add_observations(MACHINE, [event("a", "A", 0)])
        with pytest.raises(StoreError, match="discovery store failed"):
            list(made.observation_runs(MACHINE))
    finally:
        made.close()
