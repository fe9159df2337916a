"""The ``transitions`` section: sources (``"*"``), delays, regions, references, and every guard
and action format of the documented schema."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from pystator import (
    ActionExecutor,
    ActionRegistry,
    GuardEvaluationError,
    MachineValidationError,
    StateMachine,
    register_builtins,
)


def door(*transitions: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "meta": {"machine_name": "door"},
        "states": [
            {"name": "closed", "type": "initial"},
            {"name": "open"},
            {"name": "locked"},
            {"name": "gone", "type": "terminal"},
        ],
        "transitions": list(transitions),
        **extra,
    }


def problems(doc: Any) -> list[str]:
    with pytest.raises(MachineValidationError) as caught:
        StateMachine.from_dict(doc)
    return [str(p) for p in caught.value.problems]


# --- sources, triggers, delays ----------------------------------------------------------------


def test_star_means_every_non_terminal_state_and_specific_rules_come_first() -> None:
    m = StateMachine.from_dict(
        door(
            {"trigger": "smash", "source": "locked", "dest": "open"},
            {"trigger": "smash", "source": "*", "dest": "gone"},
            {"trigger": "open", "source": ["closed", "locked"], "dest": "open"},
        )
    )
    assert m.transitions[1].sources == ("closed", "open", "locked") and m.transitions[1].any_source
    assert m.process("locked", "smash").target_state == "open"
    assert m.process("closed", "smash").target_state == "gone"
    assert m.process("gone", "smash").metadata["reason"] == "terminal_state"
    assert m.process("locked", "open").target_state == "open"


def test_star_inside_a_list_is_refused() -> None:
    found = problems(door({"trigger": "x", "source": ["closed", "*"], "dest": "open"}))
    assert "transitions[0].source[1]: '*' stands alone: write source: '*'" in found


def test_trigger_less_after_fires_its_own_timer() -> None:
    m = StateMachine.from_dict(
        door(
            {"trigger": "push", "source": "closed", "dest": "open"},
            {"after": "30s", "source": "open", "dest": "closed"},
            {"trigger": "lock", "source": "closed", "dest": "locked", "after": 5000},
        )
    )
    auto = m.transitions[1]
    assert auto.trigger == "_after_1" and not auto.declared_trigger and auto.after_ms == 30_000
    (timer,) = m.process("closed", "push").timers_to_arm
    assert (timer.state, timer.trigger, timer.delay_ms) == ("open", "_after_1", 30_000)
    assert m.process("open", timer.trigger).target_state == "closed"
    armed = m.process("open", "_after_1").timers_to_arm
    assert [(t.trigger, t.delay_ms) for t in armed] == [("lock", 5000)]
    assert m.process("closed", "lock").target_state == "locked"  # 'after' with a trigger: both


def test_a_transition_needs_a_trigger_or_after() -> None:
    assert "transitions[0].trigger: missing: a transition needs a trigger (or after:)" in problems(
        door({"source": "closed", "dest": "open"})
    )


def test_description_and_references_are_kept() -> None:
    m = StateMachine.from_dict(
        door(
            {
                "trigger": "push",
                "source": "closed",
                "dest": "open",
                "description": "Someone pushes",
                "ref": "SPEC-1",
                "refs": ["SPEC-2", "SPEC-1"],
                "metadata": {"owner": "facilities"},
            }
        )
    )
    t = m.transitions[0]
    assert (t.description, t.refs, t.metadata) == (
        "Someone pushes",
        ("SPEC-1", "SPEC-2"),
        {"owner": "facilities"},
    )
    found = problems(
        door(
            {"trigger": "push", "source": "closed", "dest": "open", "refs": "SPEC-3", "auto": True}
        )
    )
    assert "transitions[0].refs: must be a list of strings" in found
    assert any(p.startswith("transitions[0].auto: unknown key") for p in found)


# --- guard formats -----------------------------------------------------------------------------


def guarded(*guards: Any) -> StateMachine:
    return StateMachine.from_dict(
        door({"trigger": "push", "source": "closed", "dest": "open", "guards": list(guards)})
    )


def test_named_guards_with_params_and_catalog_fields() -> None:
    m = guarded(
        {"name": "key_present", "params": {"keys": ["badge", "pin"]}},
        {
            "name": "badge_valid",
            "implementation_kind": "source_code",
            "source_code": "def x(ctx): 1/0",
        },
    )
    guards, _ = register_builtins()
    guards.register("badge_valid", lambda ctx: ctx["badge"].startswith("B"))
    m.bind_guards(guards)
    assert m.process("closed", "push", {"badge": "B7", "pin": 1}).success  # the registry decides
    rejected = m.process("closed", "push", {"badge": "B7"})
    assert rejected.metadata["guard_name"] == "key_present"


@pytest.mark.parametrize(
    "guard",
    [
        "expr: weight < 100",
        {"expr": "weight < 100"},
        {"check": {"field": "weight", "op": "lt", "value": 100}},
        {"not": {"check": {"field": "weight", "op": "gte", "value": 100}}},
        {"allOf": [{"check": {"field": "weight", "op": "is_set"}}, {"expr": "weight < 100"}]},
        {
            "anyOf": [
                {"check": {"field": "weight", "op": "lt", "value": 100}},
                {"expr": "vip is True"},
            ]
        },
    ],
)
def test_inline_guard_forms(guard: Any) -> None:
    m = guarded(guard)
    assert m.process("closed", "push", {"weight": 80}).success
    assert not m.process("closed", "push", {"weight": 180}).success


def test_composites_with_named_guards_sync_and_async() -> None:
    m = guarded(
        {
            "anyOf": [
                {"allOf": [{"check": {"field": "badge", "op": "is_set"}}, "badge_ok"]},
                {"not": "alarm_on"},
            ]
        }
    )
    m.guard("badge_ok")(lambda ctx: ctx["badge"] == "B1")
    m.guard("alarm_on")(lambda ctx: bool(ctx.get("alarm")))
    assert m.process("closed", "push", {"badge": "B1", "alarm": True}).success
    assert m.process("closed", "push", {"badge": "B2"}).success
    rejected = m.process("closed", "push", {"badge": "B2", "alarm": True})
    assert (
        rejected.metadata["guard_name"]
        == "anyOf(allOf(check: badge is_set, badge_ok), not(alarm_on))"
    )

    async def badge_ok(ctx: Any) -> bool:
        return bool(ctx["badge"] == "B1")

    m.guard("badge_ok")(badge_ok)
    with pytest.raises(GuardEvaluationError, match="is async"):
        m.process("closed", "push", {"badge": "B1", "alarm": True})
    assert asyncio.run(m.aprocess("closed", "push", {"badge": "B1", "alarm": True})).success
    assert not asyncio.run(m.aprocess("closed", "push", {"badge": "B9", "alarm": True})).success


@pytest.mark.parametrize(
    ("guard", "expected"),
    [
        (
            {"check": {"field": "w", "op": "lt"}},
            "transitions[0].guards[0].check.value: operator 'lt' needs 'value'",
        ),
        ({"check": {"field": "w", "op": "in", "value": 3}}, "takes a list under 'values'"),
        (
            {"check": {"field": "w", "op": "is_set", "value": 3}},
            "operator 'is_set' takes no 'value'",
        ),
        ({"check": {"field": "", "op": "eq", "value": 3}}, "a check needs 'field'"),
        (
            {"check": {"field": "w", "op": "eq", "value": {"a": 1}}},
            "a value must be a string, number, boolean or null",
        ),
        ({"check": {"field": "w", "op": "in", "values": list(range(1001))}}, "at most 1000 items"),
        ({"allOf": []}, "allOf must be a non-empty list"),
        ({"expr": "__import__('os')"}, "invalid guard expression"),
        ({"expr": "x", "check": {}}, "exactly one of expr, check, allOf, anyOf, not, name"),
        ({"name": "g", "implementation_kind": "magic"}, "must be one of entry_point, source_code"),
        ({"field": "w", "op": "eq", "value": 1}, "exactly one of"),
    ],
)
def test_guard_mistakes_are_named(guard: Any, expected: str) -> None:
    found = problems(
        door({"trigger": "push", "source": "closed", "dest": "open", "guards": [guard]})
    )
    assert any(expected in p for p in found), found


def test_deep_composites_are_refused() -> None:
    deep: Any = {"check": {"field": "a", "op": "is_set"}}
    for _ in range(20):
        deep = {"not": deep}
    assert any(
        "condition too large" in p
        for p in problems(
            door({"trigger": "p", "source": "closed", "dest": "open", "guards": [deep]})
        )
    )


# --- action formats ----------------------------------------------------------------------------


def acting(*actions: Any) -> StateMachine:
    return StateMachine.from_dict(
        door({"trigger": "push", "source": "closed", "dest": "open", "actions": list(actions)})
    )


def test_named_parameterized_custom_and_http_actions_are_planned_calls() -> None:
    m = acting(
        "ring",
        {
            "name": "announce",
            "params": {"volume": 3},
            "retry": 2,
            "retry_backoff": 0.5,
            "timeout": 1.5,
        },
        {"custom": {"name": "append_line", "params": {"path": "out.jsonl"}}},
        {
            "http": {
                "url": "https://example.test/doors/{{ door_id }}",
                "method": "post",
                "body": {"s": "open"},
            },
            "timeout": 3,
        },
    )
    calls = m.process("closed", "push").transition_actions
    assert [c.name for c in calls] == ["ring", "announce", "append_line", "http"]
    announce = calls[1]
    assert (dict(announce.params), announce.retry, announce.retry_backoff, announce.timeout) == (
        {"volume": 3},
        2,
        0.5,
        1.5,
    )
    assert dict(calls[2].params) == {"path": "out.jsonl"}
    assert dict(calls[3].params) == {
        "url": "https://example.test/doors/{{ door_id }}",
        "method": "POST",
        "headers": {},
        "on_error": "raise",
        "body": {"s": "open"},
        "timeout": 3.0,
    }


def test_per_action_when_skips_the_entry() -> None:
    m = acting(
        {"name": "alert", "when": {"field": "level", "op": "eq", "value": "high"}},
        {"name": "log_it", "when": "level != 'high'"},
    )
    high = m.process("closed", "push", {"level": "high"})
    assert high.all_actions == ("alert",)
    assert high.metadata["skipped_actions"] == ["log_it (when expr: level != 'high')"]
    assert m.process("closed", "push", {"level": "low"}).all_actions == ("log_it",)


def test_branch_actions_choose_then_or_else_and_nest() -> None:
    m = acting(
        {
            "branch": {
                "when": {"field": "total", "op": "gt", "value": 100},
                "then": [
                    "review",
                    {
                        "branch": {
                            "when": "total > 1000",
                            "then": ["escalate"],
                            "else": [{"set": {"review": "normal"}}],
                        }
                    },
                ],
                "else": [{"set": {"review": "none"}}],
            }
        }
    )
    assert m.process("closed", "push", {"total": 5000}).all_actions == ("review", "escalate")
    mid = m.process("closed", "push", {"total": 500})
    assert (mid.all_actions, mid.context) == (("review",), {"total": 500, "review": "normal"})
    low = m.process("closed", "push", {"total": 5})
    assert (low.all_actions, low.context) == ((), {"total": 5, "review": "none"})


def test_executor_honours_a_call_s_retry() -> None:
    attempts: list[int] = []

    def flaky(ctx: Any) -> None:
        attempts.append(1)
        if len(attempts) < 3:
            raise RuntimeError("try again")

    registry = ActionRegistry()
    registry.register("flaky", flaky)
    m = acting({"name": "flaky", "retry": 2, "retry_backoff": 0.25})
    slept: list[float] = []
    report = ActionExecutor(registry, sleep=slept.append).execute(m.process("closed", "push"), {})
    assert report.success and len(attempts) == 3 and slept == [0.25, 0.5]


def test_executor_bounds_an_async_call_by_its_timeout() -> None:
    async def slow(ctx: Any) -> None:
        await asyncio.Event().wait()  # never finishes: only the timeout ends it

    registry = ActionRegistry()
    registry.register("slow", slow)
    m = acting({"name": "slow", "timeout": 0.05})
    executor = ActionExecutor(registry, raise_on_error=False)
    report = asyncio.run(executor.async_execute(m.process("closed", "push"), {}))
    assert report.failed == ("slow",) and "TimeoutError" in str(report.failures[0].error)


@pytest.mark.parametrize(
    ("action", "expected"),
    [
        ({"code": {"source": "ctx['x'] = 1"}}, "inline code actions are not supported"),
        ({"set": {"a": 1}, "retry": 2}, "applies to named and http actions, not set"),
        ({"name": "a", "retry": -1}, "must be a non-negative integer"),
        ({"name": "a", "timeout": 0}, "must be a number of seconds > 0"),
        (
            {"http": {"url": "file:///etc/passwd"}},
            "http needs a 'url' starting with http:// or https://",
        ),
        ({"http": {"url": "https://x", "method": "BREW"}}, "must be one of GET, POST"),
        (
            {"name": "a", "when": {"field": "x", "op": "near", "value": 1}},
            "unknown operator 'near'",
        ),
        ({"name": "a", "when": "guard_name"}, None),
        ({"name": "a", "when": {"name": "g"}}, "a named guard is not allowed here"),
        ({"branch": {"then": ["a"]}}, "missing: a branch needs a condition"),
        ({"set": {"a": 1}, "increment": "b"}, "exactly one of"),
    ],
)
def test_action_mistakes_are_named(action: Any, expected: str | None) -> None:
    doc = door({"trigger": "push", "source": "closed", "dest": "open", "actions": [action]})
    if expected is None:  # a bare word in `when` is an expression (a context name)
        assert StateMachine.from_dict(doc).process(
            "closed", "push", {"guard_name": 1}
        ).all_actions == ("a",)
        return
    found = problems(doc)
    assert any(expected in p for p in found), found


def test_branches_nest_at_most_eight_deep() -> None:
    action: Any = "leaf"
    for _ in range(9):
        action = {"branch": {"when": "True", "then": [action]}}
    assert any(
        "branches nest at most 8 deep" in p
        for p in problems(
            door({"trigger": "p", "source": "closed", "dest": "open", "actions": [action]})
        )
    )
