"""Inference on hand-made streams: the exact edges, counts and confidence, repeats, self-loops,
late arrivals and ties, thresholds and manual selections, trigger names, initial and terminal
states."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from pystator.discovery import (
    DiscoveryError,
    DraftMode,
    EdgeCounts,
    InferenceEngine,
    InferenceThresholds,
    InferredEdge,
    InMemoryDiscoveryStore,
    InvalidObservationError,
    ObservedStateEvent,
    StoredObservations,
)

T0 = datetime(2026, 3, 25, 10, 0, tzinfo=UTC)
MACHINE = "orders"
EVERYTHING = InferenceThresholds(min_edge_count=1, min_confidence=0.0)


def obs(entity: str, state: str, minute: float, **extra: Any) -> ObservedStateEvent:
    return ObservedStateEvent(
        entity_id=entity,
        machine_name=MACHINE,
        state=state,
        observed_at=T0 + timedelta(minutes=minute),
        source="test",
        **extra,
    )


def walk(entity: str, *states: str) -> list[ObservedStateEvent]:
    return [obs(entity, state, i) for i, state in enumerate(states)]


def engine_with(
    *events: ObservedStateEvent, thresholds: InferenceThresholds | None = None
) -> InferenceEngine:
    engine = InferenceEngine(InMemoryDiscoveryStore(), thresholds=thresholds or EVERYTHING)
    engine.record_observations(MACHINE, list(events))
    return engine


def table(edges: list[InferredEdge]) -> list[tuple[str, str, int, float, bool]]:
    return [(e.source_state, e.destination_state, e.count, e.confidence, e.kept) for e in edges]


# the stream most tests use: four entities, one of which stays in B for two observations
STREAM = [
    *walk("e1", "A", "B", "C"),
    *walk("e2", "A", "B", "D"),
    *walk("e3", "A", "C"),
    *walk("e4", "A", "B", "B", "C"),
]


def test_edges_counts_and_confidence() -> None:
    engine = engine_with(*STREAM)
    assert table(engine.infer(MACHINE)) == [
        ("A", "B", 3, 0.75, True),
        ("A", "C", 1, 0.25, True),
        ("B", "C", 2, 2 / 3, True),
        ("B", "D", 1, 1 / 3, True),
    ]
    counts = engine.count(_stored(engine))
    assert counts.observations == 12 and counts.entities == 4
    assert counts.repeats == 1  # e4 stayed in B: no B -> B edge
    assert counts.first_seen == {"A": 4}
    assert counts.visits == {"A": 4, "B": 4, "C": 3, "D": 1}
    assert counts.exits() == {"A": 4, "B": 3}


def _stored(engine: InferenceEngine) -> StoredObservations:
    return StoredObservations(engine.observations, MACHINE)


def test_the_confidence_of_a_sources_edges_adds_up_to_one() -> None:
    engine = engine_with(*STREAM, *walk("e5", "B", "A", "D", "C"))
    by_source: dict[str, float] = {}
    for edge in engine.infer(MACHINE):
        by_source[edge.source_state] = by_source.get(edge.source_state, 0.0) + edge.confidence
    assert by_source == pytest.approx({"A": 1.0, "B": 1.0, "D": 1.0})


def test_thresholds_drop_rare_edges_and_say_why() -> None:
    engine = engine_with(*STREAM)
    edges = engine.infer(
        MACHINE, thresholds=InferenceThresholds(min_edge_count=2, min_confidence=0.5)
    )
    assert [(e.pair, e.kept, e.reason) for e in edges] == [
        (("A", "B"), True, None),
        (("A", "C"), False, "count 1 < min_edge_count 2; confidence 0.25 < min_confidence 0.5"),
        (("B", "C"), True, None),
        (("B", "D"), False, "count 1 < min_edge_count 2; confidence 0.3333 < min_confidence 0.5"),
    ]
    only_confidence = InferenceThresholds(min_edge_count=1, min_confidence=0.7)
    assert [e.pair for e in engine.infer(MACHINE, thresholds=only_confidence) if e.kept] == [
        ("A", "B")
    ]


def test_an_edge_exactly_at_the_thresholds_is_kept() -> None:
    engine = engine_with(*STREAM)
    at = InferenceThresholds(min_edge_count=3, min_confidence=0.75)
    assert [e.pair for e in engine.infer(MACHINE, thresholds=at) if e.kept] == [("A", "B")]


def test_a_manual_selection_keeps_exactly_the_selected_edges() -> None:
    engine = engine_with(
        *STREAM, thresholds=InferenceThresholds(min_edge_count=3, min_confidence=0.9)
    )
    edges = engine.infer(MACHINE, edge_selection=[("A", "C"), ("B", "D"), ("X", "Y")])
    assert [(e.pair, e.kept, e.reason) for e in edges] == [
        (("A", "B"), False, "not in the manual selection"),
        (("A", "C"), True, None),
        (("B", "C"), False, "not in the manual selection"),
        (("B", "D"), True, None),
    ]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"min_edge_count": 0}, "min_edge_count must be an integer >= 1"),
        ({"min_edge_count": 1.5}, "min_edge_count must be an integer >= 1"),
        ({"min_confidence": 1.01}, "min_confidence must be a number from 0 to 1"),
        ({"min_confidence": -0.1}, "min_confidence must be a number from 0 to 1"),
        ({"min_confidence": True}, "min_confidence must be a number from 0 to 1"),
    ],
)
def test_bad_thresholds_are_refused(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(DiscoveryError, match=message):
        InferenceThresholds(**kwargs)


def test_late_observations_are_placed_by_their_time() -> None:
    # arrival order A, C, B; time order A, B, C
    engine = engine_with(obs("e1", "A", 0), obs("e1", "C", 2), obs("e1", "B", 1))
    assert [e.pair for e in engine.infer(MACHINE)] == [("A", "B"), ("B", "C")]
    assert engine.count(_stored(engine)).late == 1


def test_equal_times_keep_their_arrival_order() -> None:
    engine = engine_with(obs("e1", "A", 0), obs("e1", "B", 1), obs("e1", "C", 1), obs("e1", "D", 1))
    assert [e.pair for e in engine.infer(MACHINE)] == [("A", "B"), ("B", "C"), ("C", "D")]
    assert engine.count(_stored(engine)).late == 0


def test_a_late_observation_recorded_in_a_later_batch_is_placed_too() -> None:
    engine = engine_with(*walk("e1", "A", "C"))
    engine.record_observation(MACHINE, obs("e1", "B", 0.5))
    assert [e.pair for e in engine.infer(MACHINE)] == [("A", "B"), ("B", "C")]


def test_a_repeat_with_a_trigger_is_a_self_transition() -> None:
    engine = engine_with(
        obs("e1", "open", 0),
        obs("e1", "open", 1, trigger="bump"),
        obs("e1", "open", 2),
        obs("e1", "closed", 3, trigger="close"),
    )
    edges = engine.infer(MACHINE)
    assert [(e.pair, e.count, dict(e.triggers), e.trigger) for e in edges] == [
        (("open", "closed"), 1, {"close": 1}, "close"),
        (("open", "open"), 1, {"bump": 1}, "bump"),
    ]
    assert engine.count(_stored(engine)).repeats == 1


def test_a_named_previous_state_makes_the_edge_and_is_not_a_first_sighting() -> None:
    engine = engine_with(
        obs("e1", "B", 0, previous_state="A", trigger="go"),
        obs("e1", "C", 1),
        obs("e2", "A", 0),
        obs("e2", "C", 1, previous_state="B"),  # the source says it came from B
    )
    assert [(e.pair, e.count) for e in engine.infer(MACHINE)] == [
        (("A", "B"), 1),
        (("B", "C"), 2),
    ]
    assert engine.count(_stored(engine)).first_seen == {"A": 1}


def test_a_re_sent_observation_is_stored_once() -> None:
    engine = engine_with()
    first = obs("e1", "A", 0, source_event_id="x-1")
    assert engine.record_observation(MACHINE, first) is True
    assert engine.record_observation(MACHINE, first) is False
    other_source = ObservedStateEvent(
        entity_id="e1",
        machine_name=MACHINE,
        state="B",
        observed_at=T0,
        source="other",
        source_event_id="x-1",
    )
    assert engine.record_observation(MACHINE, other_source) is True
    assert engine.observations.count_observations(MACHINE) == 2


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"entity_id": ""}, "entity_id must be a non-blank string"),
        ({"entity_id": "x" * 256}, "entity_id must be a non-blank string of at most 255"),
        ({"entity_id": "a\x00b"}, "without NUL"),
        ({"state": "In Progress"}, "invalid state name 'In Progress'"),
        ({"state": None}, "missing: a state name is required"),
        ({"trigger": "go now"}, "invalid trigger name"),
        ({"machine_name": ""}, "a machine name must not be empty"),
        ({"observed_at": "2026-01-01"}, "observed_at must be a datetime"),
        ({"source": " "}, "source must be a non-blank string"),
    ],
)
def test_a_malformed_observation_is_refused(fields: dict[str, Any], message: str) -> None:
    values: dict[str, Any] = {
        "entity_id": "e1",
        "machine_name": MACHINE,
        "state": "A",
        "observed_at": T0,
        "source": "test",
        **fields,
    }
    with pytest.raises(InvalidObservationError, match=message):
        ObservedStateEvent(**values)


def test_a_naive_time_is_utc() -> None:
    event = ObservedStateEvent(
        entity_id="e", machine_name=MACHINE, state="A", observed_at=datetime(2026, 1, 1)
    )
    assert event.observed_at == datetime(2026, 1, 1, tzinfo=UTC)
    assert event.observed_at.tzinfo is UTC
    plus_two = timezone(timedelta(hours=2))
    shifted = ObservedStateEvent(
        entity_id="e",
        machine_name=MACHINE,
        state="A",
        observed_at=datetime(2026, 1, 1, 2, tzinfo=plus_two),
    )
    assert (shifted.observed_at, shifted.observed_at.tzinfo) == (
        datetime(2026, 1, 1, tzinfo=UTC),
        UTC,
    )


def test_observations_of_another_machine_are_refused_and_nothing_is_stored() -> None:
    engine = engine_with()
    stray = ObservedStateEvent(entity_id="e1", machine_name="other", state="A", observed_at=T0)
    with pytest.raises(InvalidObservationError, match="machine 'other' recorded for 'orders'"):
        engine.record_observations(MACHINE, [obs("e1", "A", 0), stray])
    assert engine.observations.count_observations(MACHINE) == 0


def test_entity_scope() -> None:
    engine = engine_with(*STREAM)
    assert table(engine.infer(MACHINE, entity_ids=["e2", "e3", "nobody"])) == [
        ("A", "B", 1, 0.5, True),
        ("A", "C", 1, 0.5, True),
        ("B", "D", 1, 1.0, True),
    ]


# --- trigger names ---------------------------------------------------------------------------------


def test_observed_trigger_names_are_used_and_derived_ones_are_stable() -> None:
    engine = engine_with(
        obs("e1", "A", 0),
        obs("e1", "B", 1, trigger="approve"),
        obs("e1", "C", 2),
        obs("e2", "A", 0),
        obs("e2", "B", 1, trigger="approve"),
        obs("e3", "A", 0),
        obs("e3", "B", 1, trigger="auto_approve"),
    )
    edges = engine.infer(MACHINE)
    assert [(e.pair, e.trigger, e.trigger_derived, dict(e.triggers)) for e in edges] == [
        (("A", "B"), "approve", False, {"approve": 2, "auto_approve": 1}),
        (("B", "C"), "to_C", True, {}),
    ]
    candidate = engine.build_candidate(MACHINE)
    assert [(t["trigger"], t["source"], t["dest"]) for t in candidate.config["transitions"]] == [
        ("approve", "A", "B"),
        ("auto_approve", "A", "B"),
        ("to_C", "B", "C"),
    ]
    assert candidate.trigger_names == "mixed"
    assert candidate.config["meta"]["metadata"]["discovery"]["trigger_names"] == "mixed"


def test_a_trigger_seen_towards_two_destinations_goes_to_the_more_frequent() -> None:
    engine = engine_with(
        *[
            obs(f"b{i}", s, m, **({"trigger": "go"} if m else {}))
            for i in range(3)
            for m, s in enumerate("AB")
        ],
        obs("c1", "A", 0),
        obs("c1", "C", 1, trigger="go"),
        # an observed trigger literally named like the derived name of A -> C
        obs("d1", "A", 0),
        obs("d1", "D", 1, trigger="to_C"),
    )
    by_pair = {e.pair: e for e in engine.infer(MACHINE)}
    assert by_pair["A", "B"].trigger == "go"
    assert (by_pair["A", "C"].trigger, by_pair["A", "C"].trigger_derived) == ("to_C_2", True)
    assert by_pair["A", "D"].trigger == "to_C"
    candidate = engine.build_candidate(MACHINE)
    from_a = sorted(
        (t["trigger"], t["dest"]) for t in candidate.config["transitions"] if t["source"] == "A"
    )
    assert from_a == [("go", "B"), ("to_C", "D"), ("to_C_2", "C")]


# --- candidates ----------------------------------------------------------------------------------


def test_the_candidate_definition() -> None:
    engine = engine_with(*STREAM, thresholds=InferenceThresholds())
    candidate = engine.build_candidate(MACHINE, created_by="tester")
    assert candidate.version == 1
    assert candidate.config == {
        "meta": {
            "machine_name": "orders",
            "description": "Inferred from 12 observations of 4 entities (observations)",
            "metadata": {
                "discovery": {
                    "source": "observations",
                    "mode": "inference",
                    "thresholds": {"min_edge_count": 2, "min_confidence": 0.05},
                    "observations": 12,
                    "entities": 4,
                    "dropped_edges": 2,
                    "trigger_names": "derived",
                }
            },
        },
        "states": [
            {"name": "A", "type": "initial", "metadata": {"observations": 4, "first_seen": 4}},
            {"name": "B", "type": "stable", "metadata": {"observations": 4, "first_seen": 0}},
            {"name": "C", "type": "terminal", "metadata": {"observations": 3, "first_seen": 0}},
        ],
        "transitions": [
            {
                "trigger": "to_B",
                "source": "A",
                "dest": "B",
                "metadata": {"count": 3, "confidence": 0.75, "trigger_derived": True},
            },
            {
                "trigger": "to_C",
                "source": "B",
                "dest": "C",
                "metadata": {"count": 2, "confidence": 0.666667, "trigger_derived": True},
            },
        ],
    }
    assert [e.pair for e in candidate.dropped_edges] == [("A", "C"), ("B", "D")]
    assert candidate.initial_states == {"A": 4}
    assert (candidate.initial_state, candidate.terminal_states, candidate.never_left) == (
        "A",
        ("C",),
        ("C",),
    )
    assert (candidate.observation_count, candidate.entity_count, candidate.repeat_count) == (
        12,
        4,
        1,
    )
    assert (candidate.created_by, candidate.mode, candidate.source) == (
        "tester",
        DraftMode.INFERENCE,
        "observations",
    )


def test_a_state_left_only_by_dropped_edges_is_terminal_but_not_never_left() -> None:
    engine = engine_with(
        *[e for i in range(5) for e in walk(f"e{i}", "A", "B")], *walk("x", "A", "B", "Z")
    )
    candidate = engine.build_candidate(MACHINE, thresholds=InferenceThresholds(min_edge_count=2))
    assert candidate.terminal_states == ("B",)
    assert candidate.never_left == ()


def test_the_initial_state_without_any_first_sighting() -> None:
    # a window that opens mid-life: every observation names the state it left
    engine = engine_with(
        obs("e1", "B", 0, previous_state="A"),
        obs("e1", "C", 1),
        obs("e2", "C", 0, previous_state="B"),
    )
    candidate = engine.build_candidate(MACHINE)
    assert candidate.initial_states == {}
    assert candidate.initial_state == "A"  # the only source nothing leads into
    assert [s["name"] for s in candidate.config["states"]] == ["A", "B", "C"]


def test_builds_are_numbered_and_identical_data_gives_an_identical_definition() -> None:
    engine = engine_with(*STREAM)
    first = engine.build_candidate(MACHINE)
    second = engine.build_candidate(MACHINE)
    assert (first.version, second.version) == (1, 2)
    assert first.config == second.config
    assert engine.latest_candidate(MACHINE) == second
    assert [c.version for c in engine.list_candidates(MACHINE)] == [2, 1]
    assert engine.get_candidate(MACHINE, 1) == first
    assert engine.get_candidate(MACHINE, 3) is None


def test_building_with_nothing_observed_is_refused() -> None:
    with pytest.raises(DiscoveryError, match="no observations of machine 'orders'"):
        engine_with().build_candidate(MACHINE)


def test_a_manual_candidate() -> None:
    engine = engine_with(*STREAM)
    candidate = engine.build_candidate(MACHINE, edge_selection=[("A", "C")])
    assert candidate.mode is DraftMode.MANUAL
    assert [(t["source"], t["dest"]) for t in candidate.config["transitions"]] == [("A", "C")]
    assert [s["name"] for s in candidate.config["states"]] == ["A", "C"]


def test_edge_counts_directly() -> None:
    rows = [(T0, 1, "A", None, None), (T0, 2, "B", "go", None)]
    counts = EdgeCounts().add_runs([("e1", rows), ("e2", iter(rows)), ("e3", [])])
    assert counts.edges == {("A", "B"): 2}
    assert counts.triggers == {("A", "B"): {"go": 2}}
    assert counts.entities == 2  # an empty run is no entity
