"""Discovery from the fleet's own ``transition_history``: a real processor drains a known machine,
then the history is read in place and the candidate has exactly the edges that were used."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import timedelta

import pytest
import sqlalchemy as sa

from pystator import StateMachine
from pystator.discovery import (
    InferenceEngine,
    InferenceThresholds,
    InMemoryDiscoveryStore,
    TransitionHistorySource,
)
from pystator.fsm_core.lint import LintSeverity, lint
from pystator.fsm_core.records import HistoryEntry
from pystator.registry.migration import MIGRATION_ORIGIN, MIGRATION_TRIGGER
from pystator.stores.sql import history_queries
from pystator.stores.sql.connections import dispose
from pystator.stores.sql.engine import create_engine_from_url
from pystator.stores.sql.schema import transition_history
from tests.support.worker import CONFIG, MACHINE, Rig, make_rig

pytestmark = pytest.mark.integration

EVERYTHING = InferenceThresholds(min_edge_count=1, min_confidence=0.0)
# entity -> triggers submitted (wtest: new --open--> open --bump--> open --close--> closed)
SCRIPT = {
    "e1": ["open", "bump", "bump", "close"],
    "e2": ["open", "close"],
    "e3": ["open", "bump"],
    "e4": ["open", "open"],  # the second is rejected (no open from open): no history row
}


@pytest.fixture(params=["postgresql", "sqlite"])
def rig(request: pytest.FixtureRequest) -> Iterator[Rig]:
    name = "pg_migrated_url" if request.param == "postgresql" else "sqlite_migrated_url"
    rig = make_rig(str(request.getfixturevalue(name)))
    yield rig
    dispose(rig.engine)


@pytest.fixture
def reader(rig: Rig) -> Iterator[sa.Engine]:
    """A plain engine on the fleet's database, as a discovery read should use."""
    engine = create_engine_from_url(rig.url)
    yield engine
    engine.dispose()


def drain(rig: Rig, script: dict[str, list[str]]) -> None:
    """Round n of the script is applied (and recorded) n minutes after the start."""
    for step in range(max(len(t) for t in script.values())):
        for entity, triggers in script.items():
            if step < len(triggers):
                rig.submit(entity, triggers[step])
        rig.processor.drain()
        rig.clock.advance(60)


def used_edges(rig: Rig) -> Counter[tuple[str, str, str]]:
    """(source, target, trigger) of every history row; a creation left the initial state."""
    h = transition_history.c
    query = sa.select(h.source_state, h.target_state, h.trigger).where(h.machine == MACHINE)
    with rig.engine.connect() as conn:
        return Counter((s or "new", t, g) for s, t, g in conn.execute(query))


def test_the_candidate_has_exactly_the_edges_the_fleet_used(rig: Rig, reader: sa.Engine) -> None:
    drain(rig, SCRIPT)
    used = used_edges(rig)
    assert used == Counter(
        {("new", "open", "open"): 4, ("open", "open", "bump"): 3, ("open", "closed", "close"): 2}
    )
    engine = InferenceEngine(InMemoryDiscoveryStore(), thresholds=EVERYTHING)
    source = TransitionHistorySource(reader, MACHINE, initial_state="new")
    edges = engine.infer_source(source)
    assert {(e.source_state, e.destination_state, e.trigger): e.count for e in edges} == dict(used)
    assert {e.pair: e.confidence for e in edges} == {
        ("new", "open"): 1.0,
        ("open", "open"): 0.6,
        ("open", "closed"): 0.4,
    }
    candidate = engine.build_candidate_from(source, created_by="history")
    assert candidate.source == "transition_history"
    assert candidate.trigger_names == "observed"
    assert (candidate.initial_state, candidate.terminal_states) == ("new", ("closed",))
    assert candidate.entity_count == 4
    machine = StateMachine.from_dict(candidate.config)
    learned = {(t.trigger, t.sources, t.dest) for t in machine.transitions}
    original = {(t.trigger, t.sources, t.dest) for t in StateMachine.from_dict(CONFIG).transitions}
    assert learned == original  # every transition of wtest was used, nothing else
    assert [f for f in lint(machine) if f.severity is not LintSeverity.INFO] == []


def test_a_window_and_an_entity_scope(rig: Rig, reader: sa.Engine) -> None:
    start = rig.clock.now
    drain(rig, SCRIPT)
    # from the third round on: e1's second bump and its close; e2 had finished by then
    source = TransitionHistorySource(reader, MACHINE, since=start + timedelta(minutes=2))
    engine = InferenceEngine(InMemoryDiscoveryStore(), thresholds=EVERYTHING)
    counts = engine.count(source)
    assert counts.edges == {("open", "open"): 1, ("open", "closed"): 1}
    assert counts.first_seen == {}  # entities already alive: no false first sighting
    assert counts.entities == 1
    first_minute = start + timedelta(minutes=1)
    until = TransitionHistorySource(reader, MACHINE, until=first_minute, initial_state="new")
    created = engine.count(until)
    assert (created.edges, created.first_seen) == ({("new", "open"): 4}, {"new": 4})
    # without the initial state, a creation is a first sighting of the state created in
    bare = engine.count(TransitionHistorySource(reader, MACHINE, until=first_minute))
    assert (bare.edges, bare.first_seen) == ({}, {"open": 4})
    scoped = TransitionHistorySource(reader, MACHINE, entity_ids=["e2"], initial_state="new")
    assert engine.count(scoped).edges == {("new", "open"): 1, ("open", "closed"): 1}
    assert engine.count(TransitionHistorySource(reader, "no_such_machine")).observations == 0


def test_a_state_map_move_is_not_an_observed_transition(rig: Rig, reader: sa.Engine) -> None:
    """A publish's state map writes a history row (origin ``migration``) for each entity it
    moves; discovery leaves it out, or the operator's move would become a learned edge."""
    drain(rig, SCRIPT)
    engine = InferenceEngine(InMemoryDiscoveryStore(), thresholds=EVERYTHING)
    before = engine.count(TransitionHistorySource(reader, MACHINE, initial_state="new")).edges
    moved = HistoryEntry(
        machine=MACHINE,
        entity_id="e3",  # left in open by the script
        version=rig.record("e3").version + 1,
        source_state="open",
        target_state="closed",
        trigger=MIGRATION_TRIGGER,
        event_id=None,
        origin=MIGRATION_ORIGIN,
        actions=(),
        payload={},
        created_at=rig.clock.now,
    )
    with rig.engine.begin() as conn:
        history_queries.insert_history(conn, [moved])
    after = engine.count(TransitionHistorySource(reader, MACHINE, initial_state="new")).edges
    assert after == before == {("new", "open"): 4, ("open", "open"): 3, ("open", "closed"): 2}
