"""Apply-data: a trigger-less data update, merged into the context and routed by ``when`` rules
through an existing transition (``pystator.fsm_core.apply_data``, the pure step, the
Orchestrator)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from pystator import Orchestrator, StateMachine
from pystator.fsm_core import Route, aapply_data, apply_data
from pystator.fsm_core.apply_data import APPLY_DATA_KEY, APPLY_DATA_TRIGGER
from pystator.fsm_core.errors import ContextValidationError
from pystator.fsm_core.records import EntityRecord, EventInput, EventKind, Outcome
from pystator.fsm_core.step import apply_event
from pystator.stores import InMemoryStateStore

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "order_routing.yaml"
NOW = datetime(2026, 12, 7, tzinfo=UTC)


@pytest.fixture
def orders() -> StateMachine:
    return StateMachine.from_yaml(EXAMPLE)


def _machine(**meta: Any) -> StateMachine:
    """Two routes to ``b`` (first guarded), ``c`` matches before ``d`` but only ``d`` is
    reachable from ``a``; ``group`` is a compound state entered at ``g1``."""
    return StateMachine.from_dict(
        {
            "meta": {"machine_name": "routes", "classification": {"auto_route": True}, **meta},
            "states": [
                {"name": "a", "type": "initial"},
                {"name": "b", "when": [{"field": "to", "op": "eq", "value": "b"}]},
                {"name": "c", "when": [{"field": "x", "op": "gt", "value": 10}]},
                {"name": "d", "when": [{"field": "x", "op": "gt", "value": 5}]},
                {
                    "name": "group",
                    "initial_child": "g1",
                    "when": [{"field": "to", "op": "eq", "value": "group"}],
                },
                {"name": "g1", "parent": "group"},
                {"name": "g2", "parent": "group"},
            ],
            "transitions": [
                {
                    "trigger": "strict",
                    "source": "a",
                    "dest": "b",
                    "guards": [{"check": {"field": "vip", "op": "eq", "value": True}}],
                },
                {"trigger": "loose", "source": "a", "dest": "b"},
                {"trigger": "to_d", "source": "a", "dest": "d"},
                {"trigger": "enter", "source": "a", "dest": "group"},
                {"trigger": "later", "source": "d", "dest": "b", "after": 1000},
            ],
        }
    )


def test_matching_state_is_reached_through_its_transition(orders: StateMachine) -> None:
    result = apply_data(orders, "open", {"sku": "X"}, {"filled_qty": 40})
    assert result.route is Route.MOVED and result.moved
    assert (result.target_state, result.trigger) == ("partially_filled", "fill_partial")
    assert result.context == {"sku": "X", "filled_qty": 40}
    assert result.transition is not None and result.transition.states_entered == (
        "partially_filled",
    )


def test_no_transition_merges_the_data_and_stays(orders: StateMachine) -> None:
    result = apply_data(orders, "open", {}, {"hold": True})
    assert result.route is Route.NO_TRANSITION and not result.moved
    assert (result.destination, result.target_state) == ("on_hold", "open")
    assert result.context == {"hold": True}


def test_failing_guard_blocks_the_move_and_says_which(orders: StateMachine) -> None:
    result = apply_data(orders, "partially_filled", {"filled_qty": 40}, {"filled_qty": 100})
    assert result.route is Route.BLOCKED and result.target_state == "partially_filled"
    assert [(a.trigger, a.reason) for a in result.tried] == [("fill", "guard_rejected")]
    assert result.context["filled_qty"] == 100  # merged all the same

    passed = apply_data(
        orders, "partially_filled", {"filled_qty": 40}, {"settled": True, "filled_qty": 100}
    )
    assert passed.moved and passed.target_state == "filled"


def test_two_matching_states_first_in_definition_order_wins(orders: StateMachine) -> None:
    # partially_filled and on_hold both match: partially_filled is defined first
    result = apply_data(orders, "open", {}, {"filled_qty": 10, "hold": True})
    assert result.destination == "partially_filled" and result.moved


def test_first_match_unreachable_does_not_fall_through_to_a_later_match() -> None:
    machine = _machine()
    result = apply_data(machine, "a", {}, {"x": 20})  # c and d match; only d is reachable
    assert result.route is Route.NO_TRANSITION and result.destination == "c"
    assert result.target_state == "a"
    assert apply_data(machine, "a", {}, {"x": 7}).target_state == "d"


def test_two_transitions_to_the_destination_first_passing_in_priority_order() -> None:
    machine = _machine()
    taken = apply_data(machine, "a", {}, {"to": "b"})
    assert taken.trigger == "loose"
    assert [(a.trigger, a.reason) for a in taken.tried] == [("strict", "guard_rejected")]
    assert apply_data(machine, "a", {"vip": True}, {"to": "b"}).trigger == "strict"


def test_compound_destination_enters_its_initial_child_and_counts_as_there() -> None:
    machine = _machine()
    result = apply_data(machine, "a", {}, {"to": "group"})
    assert result.moved and result.target_state == "g1"
    again = apply_data(machine, "g2", {"to": "group"}, {"n": 1})
    assert again.route is Route.ALREADY_THERE and again.target_state == "g2"


def test_delayed_transitions_are_never_taken_by_a_data_update() -> None:
    result = apply_data(_machine(), "d", {}, {"to": "b"})
    assert result.route is Route.NO_TRANSITION


def test_no_match_and_auto_route_off_only_merge(orders: StateMachine) -> None:
    assert apply_data(orders, "open", {}, {"note": "hi"}).route is Route.NO_MATCH
    off = StateMachine.from_dict(
        {
            "meta": {"machine_name": "off"},
            "states": [
                {"name": "a", "type": "initial"},
                {"name": "b", "when": [{"field": "go", "op": "eq", "value": True}]},
            ],
            "transitions": [{"trigger": "go", "source": "a", "dest": "b"}],
        }
    )
    result = apply_data(off, "a", {}, {"go": True})
    assert result.route is Route.AUTO_ROUTE_OFF and result.context == {"go": True}


def test_terminal_entity_gets_the_data_but_never_moves(orders: StateMachine) -> None:
    result = apply_data(orders, "cancelled", {}, {"filled_qty": 5})
    assert result.route is Route.NO_TRANSITION and result.target_state == "cancelled"


def test_data_must_be_a_mapping(orders: StateMachine) -> None:
    with pytest.raises(ContextValidationError, match="mapping"):
        apply_data(orders, "open", {}, ["filled_qty", 5])  # type: ignore[arg-type]


def test_async_variant_agrees(orders: StateMachine) -> None:
    result = asyncio.run(aapply_data(orders, "open", {}, {"filled_qty": 40}))
    assert result.report() == apply_data(orders, "open", {}, {"filled_qty": 40}).report()


# --- the pure step -----------------------------------------------------------------------------


def _record(state: str, context: dict[str, Any], version: int = 3) -> EntityRecord:
    return EntityRecord(
        machine="order_routing",
        entity_id="o-1",
        state=state,
        context=context,
        version=version,
        entries={state: version},
    )


def _data(data: dict[str, Any]) -> EventInput:
    return EventInput(trigger=APPLY_DATA_TRIGGER, context=data, kind=EventKind.APPLY_DATA)


def test_step_moves_through_the_transition_and_records_its_trigger(orders: StateMachine) -> None:
    outcome = apply_event(
        orders, _record("open", {}), _data({"filled_qty": 5}), NOW, entity_id="o-1"
    )
    assert outcome.status is Outcome.APPLIED and outcome.record is not None
    assert (outcome.record.state, outcome.record.version) == ("partially_filled", 4)
    assert outcome.history is not None and outcome.history.trigger == "fill_partial"
    assert outcome.history.payload == {"filled_qty": 5}
    assert outcome.apply_data is not None and outcome.apply_data.moved
    assert outcome.result.metadata[APPLY_DATA_KEY]["route"] == "moved"


def test_step_without_a_move_still_stores_the_merged_context(orders: StateMachine) -> None:
    outcome = apply_event(
        orders, _record("open", {"a": 1}), _data({"hold": True}), NOW, entity_id="o-1"
    )
    assert outcome.status is Outcome.APPLIED and outcome.record is not None
    assert (outcome.record.state, outcome.record.version) == ("open", 4)
    assert outcome.record.context == {"a": 1, "hold": True}
    assert outcome.record.entries == {"open": 3}  # same entry: its timers stay valid
    assert outcome.history is not None
    assert (outcome.history.source_state, outcome.history.target_state) == ("open", "open")
    assert outcome.history.trigger == APPLY_DATA_TRIGGER
    assert outcome.result.metadata[APPLY_DATA_KEY]["route"] == "no_transition"


def test_step_never_creates_an_entity(orders: StateMachine) -> None:
    outcome = apply_event(orders, None, _data({"filled_qty": 5}), NOW, entity_id="ghost")
    assert outcome.status is Outcome.REJECTED and outcome.reason == "entity_not_found"


# --- the Orchestrator --------------------------------------------------------------------------


def test_orchestrator_applies_data_through_the_same_step(orders: StateMachine) -> None:
    store = InMemoryStateStore()
    orchestrator = Orchestrator(machine=orders, state_store=store)
    assert (
        orchestrator.apply_data("o-1", {"filled_qty": 5}).metadata["reason"] == "entity_not_found"
    )
    first = orchestrator.process_event("o-2", "fill_partial", {"filled_qty": 1})
    assert first.target_state == "partially_filled"
    blocked = orchestrator.apply_data("o-2", {"filled_qty": 100})
    assert blocked.success and blocked.target_state == "partially_filled"
    assert blocked.metadata[APPLY_DATA_KEY]["route"] == "blocked"
    moved = orchestrator.apply_data("o-2", {"settled": True})
    assert moved.success and moved.target_state == "filled"
    record = store.load("order_routing", "o-2")
    assert (record.state, record.version) == ("filled", 3)
    assert record.context == {"filled_qty": 100, "settled": True}
    history = store.history("order_routing", "o-2")
    assert [h.trigger for h in history] == ["fill_partial", APPLY_DATA_TRIGGER, "fill"]
    async_result = asyncio.run(orchestrator.async_apply_data("o-2", {"note": "late"}))
    assert async_result.metadata[APPLY_DATA_KEY]["route"] == "already_there"
