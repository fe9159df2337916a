"""``error_policy``: the pure decisions, the step (invalid events: hint / persist) and the
Orchestrator (failing guards and actions: retries, then the fallback state)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest

from pystator import (
    ActionExecutionError,
    ActionRegistry,
    EffectError,
    GuardEvaluationError,
    GuardNotFoundError,
    GuardRegistry,
    InMemoryStateStore,
    Orchestrator,
    StateMachine,
    UndefinedTriggerError,
)
from pystator.fsm_core.definition import ErrorPolicy, FallbackMode
from pystator.fsm_core.error_policy import decide_failure, is_invalid_event
from pystator.fsm_core.records import EntityRecord, EventInput, Outcome
from pystator.fsm_core.step import apply_event, fallback_step

NOW = datetime(2026, 5, 4, 8, 0, tzinfo=UTC)


def printer(mode: str | None = "persist", retry_attempts: int | None = None) -> StateMachine:
    meta: dict[str, Any] = {"machine_name": "printer"}
    if mode is not None:
        meta["orchestrator_default_fallback"] = mode
    policy: dict[str, Any] = {"default_fallback": "jammed"}
    if retry_attempts is not None:
        policy["retry_attempts"] = retry_attempts
    return StateMachine.from_dict(
        {
            "meta": meta,
            "error_policy": policy,
            "states": [
                {"name": "ready", "type": "initial"},
                {"name": "printing", "initial_child": "feeding", "on_exit": ["stop_motor"]},
                {"name": "feeding", "parent": "printing"},
                {"name": "done"},
                {"name": "jammed", "type": "error", "on_enter": [{"increment": "jams"}, "blink"]},
            ],
            "transitions": [
                {
                    "trigger": "print",
                    "source": "ready",
                    "dest": "printing",
                    "guards": ["paper_ok"],
                    "actions": ["spool"],
                },
                {"trigger": "finish", "source": "feeding", "dest": "done"},
                {
                    "trigger": "load",
                    "source": "feeding",
                    "dest": "feeding",
                    "actions": [{"increment": "sheets"}],
                },
                {"trigger": "clear", "source": "jammed", "dest": "ready"},
            ],
        }
    )


# --- the pure decisions ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "error", "attempt", "default", "expected"),
    [
        (ErrorPolicy(), GuardEvaluationError("x"), 1, 1, (False, None)),
        (ErrorPolicy(retry_attempts=2), GuardEvaluationError("x"), 2, 1, (True, None)),
        (ErrorPolicy(retry_attempts=2), GuardEvaluationError("x"), 3, 1, (False, None)),
        (
            ErrorPolicy(default_fallback="s", retry_attempts=2, mode=FallbackMode.PERSIST),
            ActionExecutionError("x"),
            3,
            1,
            (False, "s"),
        ),
        (
            ErrorPolicy(default_fallback="s", mode=FallbackMode.HINT),
            EffectError("x", effect="increment"),
            1,
            1,
            (False, None),
        ),
        (
            ErrorPolicy(default_fallback="s", mode=FallbackMode.PERSIST),
            GuardNotFoundError("x"),
            1,
            1,
            (False, None),
        ),
        (
            ErrorPolicy(default_fallback="s", mode=FallbackMode.PERSIST),
            RuntimeError("db"),
            2,
            5,
            (True, None),
        ),
        (
            ErrorPolicy(retry_attempts=0),
            GuardEvaluationError("x"),
            1,
            5,
            (False, None),
        ),  # policy wins
    ],
)
def test_decide_failure(
    policy: ErrorPolicy,
    error: Exception,
    attempt: int,
    default: int,
    expected: tuple[bool, str | None],
) -> None:
    decision = decide_failure(policy, error, attempt, default)
    assert (decision.retry, decision.fallback) == expected


def test_process_alone_never_applies_the_policy() -> None:
    result = printer().process("done", "print")
    assert not result.success and is_invalid_event(result)
    assert isinstance(result.error, UndefinedTriggerError)


# --- invalid events in the shared step ---------------------------------------------------------


def record(state: str, **context: Any) -> EntityRecord:
    return EntityRecord(
        machine="printer",
        entity_id="p-1",
        state=state,
        context=context,
        version=3,
        entries={state: 3},
    )


def test_persist_moves_an_invalid_event_to_the_fallback_state() -> None:
    outcome = apply_event(
        printer(),
        record("done", jams=1),
        EventInput(trigger="print", context={"by": "ann"}),
        NOW,
        entity_id="p-1",
    )
    assert outcome.status == Outcome.APPLIED and outcome.record is not None
    assert (outcome.record.state, outcome.record.version) == ("jammed", 4)
    assert outcome.record.context == {"jams": 2, "by": "ann"}
    assert [a.name for a in outcome.actions] == ["blink"]
    meta = outcome.result.metadata
    assert (
        meta["orchestrator_applied_default_fallback"] is True
        and meta["default_fallback"] == "jammed"
    )
    assert meta["orchestrator_original_error"]["error"] == "UndefinedTriggerError"


def test_hint_names_the_fallback_and_changes_nothing() -> None:
    outcome = apply_event(
        printer("hint"), record("done"), EventInput(trigger="print"), NOW, entity_id="p-1"
    )
    assert outcome.status == Outcome.REJECTED and outcome.record is None
    assert outcome.result.metadata["default_fallback"] == "jammed"
    assert (
        outcome.result.error is not None
        and outcome.result.error.details["default_fallback"] == "jammed"
    )


@pytest.mark.parametrize("mode", ["off", None])
def test_off_changes_nothing(mode: str | None) -> None:
    outcome = apply_event(
        printer(mode), record("done"), EventInput(trigger="print"), NOW, entity_id="p-1"
    )
    assert outcome.status == Outcome.REJECTED and "default_fallback" not in outcome.result.metadata


def test_guard_rejections_and_terminal_states_are_not_redirected() -> None:
    m = printer()
    m.guard("paper_ok")(lambda ctx: False)
    outcome = apply_event(m, record("ready"), EventInput(trigger="print"), NOW, entity_id="p-1")
    assert (
        outcome.status == Outcome.REJECTED and outcome.result.metadata["reason"] == "guard_rejected"
    )


def test_fallback_step_from_a_parallel_free_compound_state_exits_everything() -> None:
    outcome = fallback_step(
        printer(), record("feeding"), EventInput(trigger="finish"), NOW, RuntimeError("boom")
    )
    assert outcome.record is not None and outcome.record.state == "jammed"
    assert outcome.result.states_exited == ("feeding", "printing")
    assert [a.name for a in outcome.actions] == ["stop_motor", "blink"]
    assert outcome.result.metadata["orchestrator_original_error"] == {
        "error": "RuntimeError",
        "message": "boom",
    }


# --- the Orchestrator: failing guards and actions ---------------------------------------------


class Flaky:
    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0

    def __call__(self, ctx: Any) -> bool:
        self.calls += 1
        if self.calls <= self.failures:
            raise OSError("sensor offline")
        return True


def orchestrator(
    machine: StateMachine, guard: Any, spool: Any = None
) -> tuple[Orchestrator, InMemoryStateStore, list[float]]:
    guards, actions = GuardRegistry(), ActionRegistry()
    guards.register("paper_ok", guard)
    for name in ("stop_motor", "blink"):
        actions.register(name, lambda ctx: None)
    actions.register("spool", spool or (lambda ctx: None))
    store = InMemoryStateStore()
    slept: list[float] = []

    async def async_sleep(seconds: float) -> None:
        slept.append(seconds)

    orch = Orchestrator(
        machine=machine,
        state_store=store,
        guards=guards,
        actions=actions,
        sleep=slept.append,
        async_sleep=async_sleep,
        clock=lambda: NOW,
    )
    return orch, store, slept


def test_a_flaky_guard_is_retried() -> None:
    guard = Flaky(failures=2)
    orch, _store, slept = orchestrator(printer(retry_attempts=2), guard)
    assert orch.process_event("p-1", "print").target_state == "feeding"
    assert guard.calls == 3 and slept == [0.1, 0.2]


def test_a_guard_failing_every_attempt_moves_to_the_fallback_under_persist() -> None:
    guard = Flaky(failures=99)
    orch, store, _ = orchestrator(printer(retry_attempts=1), guard)
    result = orch.process_event("p-1", "print", {"job": 9})
    assert result.success and result.target_state == "jammed" and guard.calls == 2
    assert result.metadata["orchestrator_original_error"]["error"] == "GuardEvaluationError"
    stored = store.load("printer", "p-1")
    assert stored is not None and (stored.state, stored.context) == (
        "jammed",
        {"job": 9, "jams": 1},
    )


def test_without_persist_the_failure_escapes_after_its_retries() -> None:
    guard = Flaky(failures=99)
    orch, store, _ = orchestrator(printer("hint", retry_attempts=1), guard)
    with pytest.raises(GuardEvaluationError, match="sensor offline"):
        orch.process_event("p-1", "print")
    assert guard.calls == 2 and store.load("printer", "p-1") is None


def test_an_unregistered_guard_is_not_retried() -> None:
    orch, _, slept = orchestrator(printer(retry_attempts=3), Flaky(0))
    orch.machine.guard_registry.unregister("paper_ok")
    with pytest.raises(GuardNotFoundError):
        orch.process_event("p-1", "print")
    assert slept == []


def test_an_effect_failure_is_a_policy_failure() -> None:
    orch, _store, _ = orchestrator(printer(), lambda ctx: True)
    orch.process_event("p-1", "print")
    result = orch.process_event("p-1", "load", {"sheets": "many"})
    assert result.target_state == "jammed"
    assert result.metadata["orchestrator_original_error"]["error"] == "EffectError"


def test_a_failing_action_is_retried_then_the_entity_falls_back() -> None:
    calls: list[int] = []

    def spool(ctx: Any) -> None:
        calls.append(1)
        raise RuntimeError("spooler down")

    orch, store, slept = orchestrator(printer(retry_attempts=2), lambda ctx: True, spool)
    result = orch.process_event("p-1", "print")
    assert len(calls) == 3 and slept == [0.1, 0.2]
    assert result.target_state == "jammed" and result.metadata["entity_version"] == 2
    assert [(h.source_state, h.target_state) for h in store.history("printer", "p-1")] == [
        (None, "feeding"),
        ("feeding", "jammed"),
    ]


def test_a_failing_action_escapes_without_persist() -> None:
    def spool(ctx: Any) -> None:
        raise RuntimeError("spooler down")

    orch, store, _ = orchestrator(printer("off"), lambda ctx: True, spool)
    with pytest.raises(ActionExecutionError, match="spooler down"):
        orch.process_event("p-1", "print")
    stored = store.load("printer", "p-1")
    assert stored is not None and stored.state == "feeding"  # committed before the action ran


def test_the_async_path_applies_the_same_policy() -> None:
    guard = Flaky(failures=99)
    orch, _store, slept = orchestrator(printer(retry_attempts=1), guard)
    result = asyncio.run(orch.async_process_event("p-1", "print"))
    assert result.target_state == "jammed" and guard.calls == 2 and slept == [0.1]
