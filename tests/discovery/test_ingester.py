"""StateClassifier and DataIngester: records to observations, with every error counted."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from pystator import StateMachine
from pystator.discovery import (
    ClassificationRuleSet,
    DataIngester,
    InferenceEngine,
    InferenceThresholds,
    InMemoryDiscoveryStore,
    InvalidObservationError,
    StateClassifier,
)
from pystator.fsm_core.checks import CheckSpec
from pystator.fsm_core.classification import StateRule
from pystator.fsm_core.when import WhenCheck
from tests.discovery.test_when_rules import SENSOR

NOW = datetime(2026, 3, 25, 12, 0, tzinfo=UTC)


def make(**options: Any) -> tuple[DataIngester, InferenceEngine]:
    machine = StateMachine.from_dict(SENSOR)
    engine = InferenceEngine(
        InMemoryDiscoveryStore(),
        thresholds=InferenceThresholds(min_edge_count=1, min_confidence=0.0),
    )
    ingester = DataIngester(
        StateClassifier.from_machine(machine), engine, "sensor_fsm", clock=lambda: NOW, **options
    )
    return ingester, engine


def test_the_classifier_says_whether_a_rule_matched() -> None:
    classifier = StateClassifier.from_machine(StateMachine.from_dict(SENSOR))
    hot = classifier.classify({"temperature": 105, "pressure": 40})
    assert (hot.state, hot.matched) == ("overheating", True)
    cold = classifier.classify({"temperature": 5})
    assert (cold.state, cold.matched, cold.record) == ("unknown", False, {"temperature": 5})


def test_a_rule_set_without_a_machine() -> None:
    rules = ClassificationRuleSet(
        states=(
            StateRule("hot", (WhenCheck(check=CheckSpec(field="temp", op="gt", value=100)),)),
            StateRule("cold", (WhenCheck(check=CheckSpec(field="temp", op="lt", value=20)),)),
        ),
        entity_id_field="device_id",
        source="device_feed",
    )
    classifier = StateClassifier(rules)
    assert classifier.classify({"device_id": "d1", "temp": 150}).state == "hot"
    missing = classifier.classify({"device_id": "d1", "temp": 50})
    assert (missing.state, missing.matched) == (None, False)


def test_ingest_record_stores_the_observation() -> None:
    ingester, engine = make()
    result = ingester.ingest_record(
        {
            "sensor_id": "s1",
            "temperature": 105,
            "pressure": 40,
            "recorded_at": "2026-03-25T10:00:00",
        }
    )
    assert (result.state, result.matched) == ("overheating", True)
    ((entity, rows),) = list(engine.observations.observation_runs("sensor_fsm"))
    ((at, _seq, state, trigger, previous),) = list(rows)
    assert (entity, state, trigger, previous) == ("s1", "overheating", None, None)
    assert at == datetime(2026, 3, 25, 10, 0, tzinfo=UTC)


def test_a_batch_counts_accepted_classified_skipped_and_errors() -> None:
    ingester, engine = make()
    records: list[Any] = [
        {
            "sensor_id": "s1",
            "temperature": 50,
            "pressure": 60,
            "recorded_at": "2026-03-25T10:01:00",
        },
        {
            "sensor_id": "s1",
            "temperature": 110,
            "pressure": 30,
            "recorded_at": "2026-03-25T10:02:00",
        },
        {"sensor_id": 7, "status": "shutdown", "recorded_at": 1774432800},  # an int id, epoch time
        {"sensor_id": "s3", "temperature": 5},  # default state, stamped with the clock
        "not a record",
        {"temperature": 50},
        {"sensor_id": True, "temperature": 50},
        {"sensor_id": "s4", "temperature": 50, "recorded_at": "yesterday"},
        {"sensor_id": "s4", "temperature": 50, "recorded_at": float("nan")},
        {"sensor_id": "x" * 300, "temperature": 50},
        {"sensor_id": "s5", "temperature": 50, "recorded_at": datetime(2026, 3, 25, 10, 5)},
    ]
    result = ingester.ingest_batch(records)
    assert (result.total, result.accepted, result.classified, result.skipped, result.errors) == (
        11,
        5,
        5,
        0,
        6,
    )
    assert [(e.index, e.reason) for e in result.error_details] == [
        (4, "a record must be a mapping (a JSON object), got str"),
        (5, "the record has no entity id in field 'sensor_id' (a string or an integer)"),
        (6, "the record has no entity id in field 'sensor_id' (a string or an integer)"),
        (7, "field 'recorded_at': 'yesterday' is not an ISO 8601 time"),
        (8, "field 'recorded_at': nan is not a time (ISO 8601 text or seconds since the epoch)"),
        (
            9,
            "entity_id must be a non-blank string of at most 255 characters without NUL, got "
            f"{('x' * 300)!r:.57}...",
        ),
    ]
    runs = {
        entity: list(rows) for entity, rows in engine.observations.observation_runs("sensor_fsm")
    }
    assert [r[2] for r in runs["s1"]] == ["normal", "overheating"]
    assert runs["7"][0][0] == datetime.fromtimestamp(1774432800, UTC)
    assert runs["s3"][0][0] == NOW and runs["s3"][0][2] == "unknown"
    assert runs["s5"][0][0] == datetime(2026, 3, 25, 10, 5, tzinfo=UTC)
    assert (
        repr(result) == "IngestionResult(total=11, accepted=5, classified=5, skipped=0, errors=6)"
    )


def test_records_without_a_state_are_skipped() -> None:
    machine = StateMachine.from_dict({**SENSOR, "meta": {"machine_name": "sensor_fsm"}})
    engine = InferenceEngine(InMemoryDiscoveryStore())
    ingester = DataIngester(StateClassifier.from_machine(machine), engine, "sensor_fsm")
    result = ingester.ingest_batch(
        [{"entity_id": "e", "temperature": 5}, {"entity_id": "e", "temperature": 50}]
    )
    assert (result.classified, result.skipped, result.accepted) == (1, 1, 1)
    with_none = ingester.ingest_record({"entity_id": "e", "temperature": 5})
    assert with_none.state is None
    assert engine.observations.count_observations("sensor_fsm") == 1


def test_re_sent_records_with_an_event_id_are_stored_once() -> None:
    ingester, engine = make(event_id_field="reading_id", chunk_size=2)
    batch = [{"sensor_id": "s1", "temperature": 50 + i, "reading_id": f"r{i}"} for i in range(5)]
    first = ingester.ingest_batch(batch)
    again = ingester.ingest_batch(
        [*batch, {"sensor_id": "s1", "temperature": 60, "reading_id": "r9"}]
    )
    assert (first.accepted, first.duplicates) == (5, 0)
    assert (again.classified, again.accepted, again.duplicates) == (6, 1, 5)
    assert engine.observations.count_observations("sensor_fsm") == 6
    bad_id = ingester.ingest_batch([{"sensor_id": "s1", "temperature": 50, "reading_id": [1]}])
    assert bad_id.errors == 1
    assert (
        bad_id.error_details[0].reason
        == "field 'reading_id': an event id is a string or an integer"
    )


def test_ingest_record_raises_on_a_malformed_record_and_stores_nothing() -> None:
    ingester, engine = make()
    with pytest.raises(InvalidObservationError, match="no entity id"):
        ingester.ingest_record({"temperature": 50})
    assert engine.observations.count_observations("sensor_fsm") == 0


def test_a_record_whose_value_cannot_be_compared_is_an_error() -> None:
    class Weird:
        def __eq__(self, other: object) -> bool:
            raise ValueError("no comparisons")

        __hash__ = object.__hash__

    ingester, _engine = make()
    result = ingester.ingest_batch(
        [{"sensor_id": "s1", "status": Weird()}, {"sensor_id": "s1", "temperature": 50}]
    )
    assert (result.errors, result.accepted) == (1, 1)
    assert result.error_details[0].reason == "cannot classify the record: no comparisons"


def test_ingested_records_build_the_documented_candidate() -> None:
    ingester, engine = make()
    ingester.ingest_batch(
        [
            {"sensor_id": "s1", "temperature": 50, "recorded_at": "2026-03-25T10:00:00"},
            {
                "sensor_id": "s1",
                "temperature": 110,
                "pressure": 30,
                "recorded_at": "2026-03-25T10:01:00",
            },
            {"sensor_id": "s1", "temperature": 60, "recorded_at": "2026-03-25T10:02:00"},
            {"sensor_id": "s1", "status": "off", "recorded_at": "2026-03-25T10:03:00"},
        ]
    )
    candidate = engine.build_candidate("sensor_fsm")
    assert [(t["source"], t["dest"], t["trigger"]) for t in candidate.config["transitions"]] == [
        ("normal", "overheating", "to_overheating"),
        ("normal", "shutdown", "to_shutdown"),
        ("overheating", "normal", "to_normal"),
    ]
    assert candidate.initial_state == "normal"
    assert candidate.terminal_states == ("shutdown",)
