"""A candidate is an ordinary machine: it validates, lints, draws, and round-trips through the
machine registry's storage form. Drafts scope, preview and build."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from pystator import StateMachine
from pystator.cli import main
from pystator.discovery import (
    BuiltDiscoveryCandidate,
    DiscoveryError,
    DraftMode,
    InferenceEngine,
    InferenceThresholds,
    InMemoryDiscoveryStore,
    ObservedStateEvent,
)
from pystator.fsm_core.errors import NotFoundError
from pystator.fsm_core.lint import LintSeverity, lint
from pystator.fsm_core.loading import check_definition
from pystator.registry.versions import canonical, checksum, publish, show_machine
from pystator.stores.sql.engine import create_engine_from_url
from pystator.visualization import to_dot, to_mermaid
from tests.support.api_clients import TEST_ACTOR

T0 = datetime(2026, 3, 25, 10, 0, tzinfo=UTC)
MACHINE = "orders"
# pending -> open -> (filled | cancelled), with an amend loop on open and a little noise
PATHS = [
    (["pending", "open", "filled"], 40),
    (["pending", "open", "open", "filled"], 10),  # the repeat is a dwell, not an edge
    (["pending", "open", "cancelled"], 15),
    (["pending", "cancelled"], 5),
    (["pending", "filled"], 1),  # noise: dropped at the default thresholds
]


def observations() -> list[ObservedStateEvent]:
    events = []
    n = 0
    for states, times in PATHS:
        for _ in range(times):
            n += 1
            for minute, state in enumerate(states):
                events.append(
                    ObservedStateEvent(
                        entity_id=f"o-{n}",
                        machine_name=MACHINE,
                        state=state,
                        observed_at=T0 + timedelta(minutes=minute),
                        source="test",
                        trigger="amend" if (minute, state) == (2, "open") else None,
                    )
                )
    return events


@pytest.fixture
def engine() -> InferenceEngine:
    engine = InferenceEngine(InMemoryDiscoveryStore(), thresholds=InferenceThresholds())
    engine.record_observations(MACHINE, observations())
    return engine


@pytest.fixture
def candidate(engine: InferenceEngine) -> BuiltDiscoveryCandidate:
    return engine.build_candidate(MACHINE)


def test_the_candidate_validates_and_lints_clean(candidate: BuiltDiscoveryCandidate) -> None:
    _definition, problems, warnings = check_definition(candidate.config)
    assert (problems, warnings) == ([], [])
    machine = StateMachine.from_dict(candidate.config)
    assert machine.get_initial_state() == "pending"
    assert machine.terminal_states == frozenset({"filled", "cancelled"})
    serious = [f for f in lint(machine) if f.severity is not LintSeverity.INFO]
    assert serious == []
    assert machine.process("pending", "to_open").target_state == "open"
    assert machine.process("open", "amend").target_state == "open"
    assert not machine.process("pending", "to_filled").success  # the dropped noise edge
    assert [e.pair for e in candidate.dropped_edges] == [("pending", "filled")]


def test_the_candidate_draws(
    candidate: BuiltDiscoveryCandidate, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    machine = StateMachine.from_dict(candidate.config)
    assert "pending --> open : to_open" in to_mermaid(machine)
    assert '"open" -> "open"' in to_dot(machine)
    path = tmp_path / "candidate.yaml"
    path.write_text(yaml.safe_dump(dict(candidate.config), sort_keys=False))
    assert main(["validate", str(path)]) == 0
    assert main(["lint", str(path)]) == 0
    assert main(["viz", str(path), "--format", "dot"]) == 0
    out = capsys.readouterr().out
    assert "orders: 4 states, 5 transitions" in out
    assert '"pending" -> "cancelled"' in out


def test_the_candidate_round_trips_through_the_registry(
    candidate: BuiltDiscoveryCandidate, sqlite_migrated_url: str
) -> None:
    stored = canonical(candidate.config)
    assert stored == candidate.config  # already plain JSON data: stored as it is
    engine = create_engine_from_url(sqlite_migrated_url)
    try:
        published = publish(engine, candidate.config, by=TEST_ACTOR)
        again = publish(engine, dict(candidate.config), by=TEST_ACTOR)
        detail = show_machine(engine, MACHINE)
    finally:
        engine.dispose()
    assert (published.version, published.created) == (1, True)
    assert (again.version, again.created) == (1, False)  # the same definition is stored once
    assert detail.version.definition == candidate.config
    assert detail.version.checksum == checksum(stored)
    machine = detail.machine()
    assert machine.registry_version == 1
    assert machine.state_names == StateMachine.from_dict(candidate.config).state_names


# --- drafts --------------------------------------------------------------------------------------


def test_a_draft_scopes_preview_and_build(engine: InferenceEngine) -> None:
    draft = engine.create_draft(MACHINE, title="first orders", entity_ids=["o-1", "o-60", "o-70"])
    assert (draft.id, draft.mode, draft.thresholds) == (1, DraftMode.INFERENCE, engine.thresholds)
    preview = engine.preview_edges_for_draft(draft.id)
    # o-1: pending open filled; o-60: pending open cancelled; o-70: pending cancelled
    assert [(e.pair, e.count) for e in preview] == [
        (("open", "cancelled"), 1),
        (("open", "filled"), 1),
        (("pending", "open"), 2),
        (("pending", "cancelled"), 1),
    ]
    assert [e.kept for e in preview] == [False, False, True, False]  # min_edge_count 2
    built = engine.build_candidate_from_draft(draft.id, created_by="ana")
    assert (built.version, built.draft_id, built.created_by, built.entity_count) == (
        1,
        draft.id,
        "ana",
        3,
    )
    assert engine.get_draft(draft.id).last_built_version == 1


def test_a_manual_draft_builds_exactly_its_edges(engine: InferenceEngine) -> None:
    draft = engine.create_draft(
        MACHINE,
        entity_ids=["o-1", "o-70"],
        mode="manual",
        manual_edges=[["pending", "cancelled"], ["open", "filled"]],
    )
    built = engine.build_candidate_from_draft(draft.id)
    assert built.mode is DraftMode.MANUAL
    assert [(t["source"], t["dest"]) for t in built.config["transitions"]] == [
        ("open", "filled"),
        ("pending", "cancelled"),
    ]


def test_drafts_are_updated_listed_and_deleted(engine: InferenceEngine) -> None:
    first = engine.create_draft(MACHINE)
    second = engine.create_draft(MACHINE, title="two")
    engine.create_draft("other")
    updated = engine.update_draft(
        first.id,
        title="renamed",
        entity_ids=["o-1"],
        thresholds=InferenceThresholds(min_edge_count=1, min_confidence=0.0),
        mode=DraftMode.MANUAL,
        manual_edges=[("pending", "open")],
    )
    assert (updated.title, updated.selected_entity_ids, updated.mode) == (
        "renamed",
        ("o-1",),
        DraftMode.MANUAL,
    )
    assert updated.manual_edge_selection == (("pending", "open"),)
    assert updated.created_at == first.created_at
    assert [d.id for d in engine.list_drafts(MACHINE)] == [first.id, second.id]
    engine.delete_draft(second.id)
    assert [d.id for d in engine.list_drafts(MACHINE)] == [first.id]
    with pytest.raises(NotFoundError):
        engine.delete_draft(second.id)
    with pytest.raises(NotFoundError):
        engine.update_draft(second.id, title="x")


def test_a_draft_without_entities_cannot_preview_or_build(engine: InferenceEngine) -> None:
    draft = engine.create_draft(MACHINE)
    with pytest.raises(DiscoveryError, match="selects no entities"):
        engine.preview_edges_for_draft(draft.id)
    with pytest.raises(DiscoveryError, match="selects no entities"):
        engine.build_candidate_from_draft(draft.id)
    assert engine.list_candidates(MACHINE) == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"mode": "guess"}, "mode must be one of inference, manual"),
        ({"manual_edges": [["a"]]}, "an edge is a \\[source, destination\\] pair"),
        ({"manual_edges": [["a", "b c"]]}, "invalid state name 'b c'"),
        ({"entity_ids": "o-1"}, "not one string"),
        ({"entity_ids": [""]}, "an entity id must be a string"),
        ({"title": "x" * 201}, "a title must be a string of at most 200"),
    ],
)
def test_bad_draft_values_are_refused(
    engine: InferenceEngine, kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(DiscoveryError, match=message):
        engine.create_draft(MACHINE, **kwargs)  # type: ignore[arg-type]
    assert engine.list_drafts(MACHINE) == []
