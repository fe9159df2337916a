"""Declarative checks and effects: each operator and effect, their limits, and the same context
through ``process``, ``EntitySession`` and the Orchestrator (the fleet: tests/fleet/test_declarative_fleet.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from pystator import (
    EffectError,
    InMemoryStateStore,
    MachineValidationError,
    Orchestrator,
    StateMachine,
    evaluate_check,
)
from pystator.checks import CheckError
from pystator.effects import apply_effect
from tests.support.declarative_machines import DECL_ORDER_EVENTS, DECL_ORDER_FINAL, decl_order

NOW = datetime(2026, 3, 1, 9, 30, 15, 123456, tzinfo=UTC)


# --- checks ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("check", "context", "expected"),
    [
        ({"field": "n", "op": "eq", "value": 3}, {"n": 3}, True),
        ({"field": "n", "op": "eq", "value": None}, {}, True),  # missing reads as null
        ({"field": "n", "op": "neq", "value": 3}, {}, True),
        ({"field": "n", "op": "gt", "value": 3}, {"n": 4}, True),
        ({"field": "n", "op": "gt", "value": 3}, {"n": 3}, False),
        ({"field": "n", "op": "gte", "value": 3}, {"n": 3}, True),
        ({"field": "n", "op": "lt", "value": 3}, {}, False),  # missing: ordering is false
        ({"field": "n", "op": "lte", "value": 3}, {"n": None}, False),
        ({"field": "n", "op": "lt", "value": 3}, {"n": "two"}, False),  # incomparable: false
        ({"field": "s", "op": "in", "values": ["a", "b"]}, {"s": "b"}, True),
        ({"field": "s", "op": "in", "values": ["a", "b"]}, {}, False),
        ({"field": "s", "op": "not_in", "values": ["a", "b"]}, {}, True),
        ({"field": "s", "op": "in", "values": [None]}, {}, True),
        ({"field": "s", "op": "is_set"}, {"s": 0}, True),
        ({"field": "s", "op": "is_set"}, {"s": None}, False),
        ({"field": "s", "op": "is_null"}, {}, True),
        ({"field": "s", "op": "is_null"}, {"s": ""}, False),
    ],
)
def test_check_operators(check: dict[str, Any], context: dict[str, Any], expected: bool) -> None:
    assert evaluate_check(check, context) is expected


def test_a_bad_check_names_its_key() -> None:
    with pytest.raises(CheckError) as caught:
        evaluate_check({"field": "n", "op": "between", "value": 1}, {})
    assert caught.value.key == "op"


# --- effects -----------------------------------------------------------------------------------


def effect(spec: dict[str, Any], ctx: dict[str, Any]) -> dict[str, Any]:
    apply_effect(ctx, spec, NOW)
    return ctx


def test_each_effect() -> None:
    assert effect({"set": {"phase": "run", "n": 1}}, {"phase": "new"}) == {"phase": "run", "n": 1}
    assert effect({"timestamp": "at"}, {}) == {"at": "2026-03-01T09:30:15.123456+00:00"}
    assert effect({"increment": "n"}, {}) == {"n": 1}
    assert effect({"increment": "n"}, {"n": 2.5}) == {"n": 3.5}
    assert effect({"decrement": "n"}, {}) == {"n": -1}
    assert effect({"decrement": "n"}, {"n": None}) == {"n": -1}
    assert effect({"append": {"field": "ids", "value": 7}}, {}) == {"ids": [7]}
    assert effect({"append": {"field": "ids", "value": {"k": 1}}}, {"ids": [1]}) == {
        "ids": [1, {"k": 1}]
    }
    assert effect({"clear": "tmp"}, {"tmp": 1, "x": 2}) == {"x": 2}
    assert effect({"clear": "tmp"}, {}) == {}
    assert effect(
        {"compute": {"total": "qty * price", "big": "qty * price > 10"}}, {"qty": 3, "price": 4}
    ) == {
        "qty": 3,
        "price": 4,
        "total": 12,
        "big": True,
    }


def test_timestamps_are_utc_whatever_the_clock_zone() -> None:
    paris = NOW.astimezone(timezone(timedelta(hours=1)))
    ctx: dict[str, Any] = {}
    apply_effect(ctx, {"timestamp": "at"}, paris)
    assert ctx["at"] == "2026-03-01T09:30:15.123456+00:00"


@pytest.mark.parametrize(
    ("spec", "ctx", "message"),
    [
        ({"increment": "n"}, {"n": True}, "'n' holds bool True, not a number"),
        ({"decrement": "n"}, {"n": "3"}, "'n' holds str '3', not a number"),
        ({"append": {"field": "ids", "value": 1}}, {"ids": "a,b"}, "'ids' holds str, not a list"),
    ],
)
def test_effects_refuse_the_wrong_type(
    spec: dict[str, Any], ctx: dict[str, Any], message: str
) -> None:
    with pytest.raises(EffectError, match=message) as caught:
        apply_effect(ctx, spec, NOW)
    assert caught.value.code.value == "ACTION_FAILED"


def test_effect_constants_are_copied_not_shared() -> None:
    m = StateMachine.from_dict(
        {
            "states": [{"name": "a", "type": "initial"}, {"name": "b"}],
            "transitions": [
                {
                    "trigger": "go",
                    "source": "a",
                    "dest": "b",
                    "actions": [{"set": {"tags": ["x"]}}],
                },
                {
                    "trigger": "tag",
                    "source": "b",
                    "dest": "b",
                    "actions": [{"append": {"field": "tags", "value": "y"}}],
                },
            ],
        }
    )
    first = m.process("a", "go", {}).context
    assert first is not None
    first["tags"].append("mutated")
    assert m.process("a", "go", {}).context == {"tags": ["x"]}
    original = {"tags": ["x"]}
    assert m.process("b", "tag", original).context == {"tags": ["x", "y"]}
    assert original == {"tags": ["x"]}  # the caller's context is never changed


@pytest.mark.parametrize(
    ("action", "message"),
    [
        ({"set": {}}, "set needs at least one field"),
        ({"set": {"a": {1: "x"}}}, "mapping keys must be strings"),
        ({"set": {"a": list(range(2000))}}, "value too large"),
        ({"set": {"a": object()}}, "values must be JSON-like"),
        ({"increment": ""}, "a context key must be a string"),
        ({"append": {"field": "a"}}, "append needs a value"),
        ({"append": {"field": "a", "value": 1, "at": 0}}, "unknown key"),
        ({"compute": {"a": "open('x')"}}, "invalid expression"),
        ({"compute": {"a": "x" * 3000}}, "longer than 2000 characters"),
        ({"timestamp": ["a"]}, "a context key must be a string"),
    ],
)
def test_effect_mistakes_are_refused_at_load(action: dict[str, Any], message: str) -> None:
    doc = {
        "states": [{"name": "a", "type": "initial"}, {"name": "b"}],
        "transitions": [{"trigger": "go", "source": "a", "dest": "b", "actions": [action]}],
    }
    with pytest.raises(MachineValidationError) as caught:
        StateMachine.from_dict(doc)
    assert any(message in str(p) for p in caught.value.problems), caught.value.problems


def test_an_effect_failing_in_process_raises_an_fsm_error() -> None:
    m = StateMachine.from_dict(
        {
            "states": [
                {"name": "a", "type": "initial"},
                {"name": "b", "on_enter": [{"increment": "n"}]},
            ],
            "transitions": [{"trigger": "go", "source": "a", "dest": "b"}],
        }
    )
    with pytest.raises(EffectError, match="'n' holds str"):
        m.process("a", "go", {"n": "x"})


def test_effects_use_now_or_the_machine_clock() -> None:
    m = StateMachine.from_dict(
        {
            "states": [
                {"name": "a", "type": "initial"},
                {"name": "b", "on_enter": [{"timestamp": "at"}]},
            ],
            "transitions": [{"trigger": "go", "source": "a", "dest": "b"}],
        }
    )
    assert m.process("a", "go", {}, now=NOW).context == {"at": NOW.isoformat()}
    m.clock = lambda: NOW + timedelta(days=1)
    assert m.process("a", "go", {}).context == {"at": "2026-03-02T09:30:15.123456+00:00"}


# --- one context, three in-process paths -------------------------------------------------------

SEQUENCE = DECL_ORDER_EVENTS
EXPECTED = DECL_ORDER_FINAL


def via_process(machine: StateMachine) -> tuple[str, dict[str, Any]]:
    state, context = machine.get_initial_state(), {}
    for trigger, payload in SEQUENCE:
        merged = {**context, **payload}
        result = machine.process(state, trigger, merged, now=NOW)
        assert result.success, result.error
        state = result.target_state or state
        context = dict(result.context) if result.context is not None else merged
    return state, context


def via_session(machine: StateMachine) -> tuple[str, dict[str, Any]]:
    session = machine.create()
    for trigger, payload in SEQUENCE:
        assert session.send(trigger, **payload).success
    return session.current_state, session.context


def via_orchestrator(machine: StateMachine) -> tuple[str, dict[str, Any]]:
    store = InMemoryStateStore()
    orchestrator = Orchestrator(machine=machine, state_store=store)
    for trigger, payload in SEQUENCE:
        assert orchestrator.process_event("order-1", trigger, payload).success
    record = store.load(machine.name, "order-1")
    assert record is not None
    return record.state, dict(record.context)


def test_process_session_and_orchestrator_agree_on_the_context() -> None:
    machine = StateMachine.from_dict(decl_order())
    results = [path(machine) for path in (via_process, via_session, via_orchestrator)]
    assert results == [("approved", EXPECTED)] * 3


def test_the_declarative_order_declines_over_budget() -> None:
    machine = StateMachine.from_dict(decl_order())
    session = machine.create()
    session.send("submit", qty=1, price=10)
    assert session.context["tier"] == "small"
    assert not session.send("submit", qty=2).success  # no longer a draft
    session.send("approve")
    assert (session.current_state, session.context["approved_by"]) == ("declined", None)
    rejected = machine.process("draft", "submit", {"qty": 0})
    assert rejected.metadata["guard_name"] == "check: qty gt 0"
