"""Replay and shadow pieces without a fleet: allow files, divergence kinds, raising candidates,
the Prometheus counter, and retention of ended shadows."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from prometheus_client import CollectorRegistry

from pystator import GuardRegistry, StateMachine
from pystator.config.settings import Settings
from pystator.fleet.batch import Batch
from pystator.fleet.metrics import PrometheusObserver
from pystator.fleet.retention import RetentionPolicy, prune
from pystator.fleet.shadow import ShadowBook, ShadowResult
from pystator.fsm_core.divergence import ACCEPTED, ACTIONS, REJECTED, TARGET, divergence
from pystator.fsm_core.errors import ConfigurationError
from pystator.fsm_core.records import EventInput
from pystator.fsm_core.step import apply_event
from pystator.registry import versions
from pystator.services import shadow
from pystator.services.replay import (
    Allowance,
    ReplayFilter,
    parse_allowances,
    replay_steps,
)
from pystator.stores.sql.connections import dispose, fleet_engine
from pystator.stores.sql.replay_queries import RecordedStep, sampled
from pystator.stores.sql.schema import machine_shadows, shadow_diffs
from tests.replay.machines import LOAN, MACHINE, threshold
from tests.support.api_clients import TEST_ACTOR


def boom(ctx: Mapping[str, Any]) -> bool:
    raise RuntimeError("the candidate's guard failed")


def raising() -> StateMachine:
    """The loan machine whose approval guard raises."""
    config = threshold(600)
    config["transitions"][1]["guards"] = ["boom"]
    machine = StateMachine.from_dict(config)
    guards = GuardRegistry()
    guards.register("boom", boom)
    machine.bind_guards(guards)
    return machine


def test_allow_documents_are_checked() -> None:
    assert parse_allowances({"allow": [{"state": "A", "kind": "target"}]}) == (
        Allowance(state="A", trigger="*", kind="target"),
    )
    assert parse_allowances([]) == ()
    for bad in ({"allow": "x"}, [{"state": "A", "extra": 1}], ["A"], 3):
        with pytest.raises(ConfigurationError):
            parse_allowances(bad)
    with pytest.raises(ConfigurationError):
        ReplayFilter(sample=0)
    with pytest.raises(ConfigurationError):
        ReplayFilter(entities=0)


def test_divergence_kinds() -> None:
    machine = StateMachine.from_dict(LOAN)
    approve = machine.process("REVIEW", "decide", {"score": 700})
    refused = machine.process("NEW", "decide", {})
    assert divergence("APPROVED", (), approve) is None
    assert divergence("REJECTED", (), approve) == TARGET
    assert divergence("APPROVED", ("notify",), approve) == ACTIONS
    assert divergence("APPROVED", (), refused) == REJECTED
    assert divergence(None, (), approve) == ACCEPTED
    assert divergence(None, (), refused) is None


def test_a_raising_candidate_is_a_divergence_of_kind_error() -> None:
    steps = [
        RecordedStep("a", 1, None, "REVIEW", "submit", 1, "event", (), {}),
        RecordedStep("a", 2, "REVIEW", "APPROVED", "decide", 2, "event", (), {"score": 700}),
        RecordedStep("a", 3, "APPROVED", "X", "__entity_imported__", None, "direct", (), None),
    ]
    report = replay_steps(raising(), steps)
    assert (report.transitions, report.matched, report.diverged) == (2, 1, 1)
    example = report.groups[("REVIEW", "decide")].examples["error"]
    assert example.event_id == 2 and "guard failed" in (example.error or "")


def test_sampling_is_deterministic() -> None:
    ids = [f"e{n}" for n in range(1000)]
    chosen = [i for i in ids if sampled(i, 0.25)]
    assert chosen == [i for i in ids if sampled(i, 0.25)]
    assert 150 < len(chosen) < 350


def test_the_prometheus_counter_counts_comparisons() -> None:
    registry = CollectorRegistry()
    observer = PrometheusObserver(registry)
    base = {"shadow_id": 1, "machine": "m", "entity_id": "e", "event_id": 1, "state": "A"}
    batch = Batch(
        shadow=[
            ShadowResult(**base, trigger="t", active_target="B", shadow_target="B", kind=None),
            ShadowResult(**base, trigger="t", active_target="B", shadow_target="C", kind=TARGET),
            ShadowResult(**base, trigger="t", active_target="B", shadow_target=None, kind="error"),
        ]
    )
    observer.batch_committed(batch)
    for result in ("match", "mismatch", "error"):
        labels = {"machine": "m", "result": result}
        assert registry.get_sample_value("pystator_shadow_comparisons_total", labels) == 1


def test_a_raising_shadow_never_fails_the_event_and_retention_prunes_ended_shadows(
    sqlite_migrated_url: str,
) -> None:
    engine = fleet_engine(sqlite_migrated_url)
    try:
        versions.publish(engine, LOAN, by=TEST_ACTOR)
        candidate = threshold(600)
        candidate["transitions"][1]["guards"] = ["boom"]
        shadow.start_shadow(engine, MACHINE, candidate, sample_rate=1.0, by="test")
        guards = GuardRegistry()
        guards.register("boom", boom)
        book = ShadowBook(engine, bind=lambda m: m.bind_guards(guards))
        book.refresh(force=True)
        active = StateMachine.from_dict(LOAN)
        now = datetime.now(UTC)
        event = EventInput(trigger="decide", context={"score": 700}, event_id=7)
        start = apply_event(active, None, EventInput(trigger="submit"), now, entity_id="x")
        outcome = apply_event(active, start.record, event, now, entity_id="x")
        result = book.compare(MACHINE, start.record, event, now, outcome, entity_id="x")
        assert result is not None and result.kind == "error" and result.shadow_target is None
        book.add([result])
        book.close()
        view = shadow.show_shadow(engine, MACHINE)
        (group,) = view.diffs
        assert (group.kind, group.active_target, group.count) == ("error", "APPROVED", 1)
        assert "guard failed" in group.examples[0]["error"]

        policy = RetentionPolicy.from_settings(Settings())
        prune(engine, policy, now=now)  # an active shadow is never pruned
        assert _count(engine, machine_shadows) == 1 and _count(engine, shadow_diffs) == 1
        shadow.stop_shadow(engine, MACHINE)
        report = prune(engine, policy, now=now + timedelta(days=365))
        assert report.removed["shadow_diffs"] == 1 and report.removed["machine_shadows"] == 1
        assert _count(engine, machine_shadows) == 0 and _count(engine, shadow_diffs) == 0
    finally:
        dispose(engine)


def _count(engine: sa.Engine, table: sa.Table) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())
