"""ActionRegistry, call conventions, ActionExecutor (sync, async, parallel) and retries."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import pytest

from pystator import (
    ActionCall,
    ActionExecutionError,
    ActionExecutor,
    ActionNotFoundError,
    ActionPhase,
    ActionRegistry,
    RetryPolicy,
    TransitionResult,
)
from pystator.actions import CallStyle, ExecutionReport
from pystator.fsm_core.actions import call_style_of


def _call(name: str, phase: ActionPhase, **params: Any) -> ActionCall:
    return ActionCall(name=name, phase=phase, params=params)


def _result(*calls: ActionCall, success: bool = True) -> TransitionResult:
    return TransitionResult(
        success=success,
        source_state="A",
        target_state="B" if success else None,
        trigger="go",
        exit_actions=tuple(c for c in calls if c.phase is ActionPhase.EXIT),
        transition_actions=tuple(c for c in calls if c.phase is ActionPhase.TRANSITION),
        enter_actions=tuple(c for c in calls if c.phase is ActionPhase.ENTER),
    )


class _Flaky:
    """Fails ``failures`` times, then succeeds."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0

    def __call__(self, ctx: Mapping[str, Any]) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise ConnectionError(f"attempt {self.calls}")
        return "ok"


# --- registry --------------------------------------------------------------------------------


def test_registry_register_decorator_get_names() -> None:
    actions = ActionRegistry()

    def notify(ctx: Mapping[str, Any]) -> None:
        return None

    assert actions.register("notify", notify) is notify

    @actions.decorator()
    def update_positions(ctx: Mapping[str, Any]) -> None:
        return None

    @actions.decorator("renamed")
    def original(ctx: Mapping[str, Any]) -> None:
        return None

    @actions.decorator
    def bare(ctx: Mapping[str, Any]) -> None:
        return None

    assert actions.names() == ("notify", "update_positions", "renamed", "bare")
    assert actions.get("update_positions") is update_positions
    assert actions.get("nope") is None and actions.resolve("nope") is None
    assert "renamed" in actions and "original" not in actions
    assert len(actions) == 4 and list(actions) == list(actions.names())
    actions.unregister("bare")
    assert "bare" not in actions


def test_registry_refuses_bad_input() -> None:
    with pytest.raises(ValueError):
        ActionRegistry().register("", lambda ctx: None)
    with pytest.raises(TypeError):
        ActionRegistry().register("x", "not callable")  # type: ignore[arg-type]


async def _async_action(ctx: Mapping[str, Any]) -> None:
    return None


def test_registry_knows_async_actions() -> None:
    actions = ActionRegistry()
    actions.register("a", _async_action)
    actions.register("s", lambda ctx: None)
    assert actions.is_async("a") and not actions.is_async("s") and not actions.is_async("x")


def _ctx_only(ctx: Any) -> None: ...
def _ctx_params(ctx: Any, params: Any) -> None: ...
def _ctx_kwargs(ctx: Any, **params: Any) -> None: ...
def _ctx_kwonly(ctx: Any, *, amount: int = 0) -> None: ...
def _nothing() -> None: ...
def _varargs(*args: Any) -> None: ...
def _both(ctx: Any, params: Any, **kw: Any) -> None: ...
def _optional_second(ctx: Any, params: Any = None) -> None: ...


@pytest.mark.parametrize(
    ("fn", "style"),
    [
        (_ctx_only, CallStyle.CONTEXT),
        (_ctx_params, CallStyle.MAPPING),
        (_ctx_kwargs, CallStyle.KEYWORDS),
        (_ctx_kwonly, CallStyle.KEYWORDS),
        (_nothing, CallStyle.NONE),
        (_varargs, CallStyle.CONTEXT),
        (_both, CallStyle.MAPPING),
        (_optional_second, CallStyle.CONTEXT),
        (print, CallStyle.CONTEXT),
        (lambda ctx: None, CallStyle.CONTEXT),
    ],
)
def test_call_style_from_signature(fn: Any, style: CallStyle) -> None:
    assert call_style_of(fn) is style


# --- sync execution --------------------------------------------------------------------------


def test_execute_runs_phases_in_order_with_each_convention() -> None:
    seen: list[tuple[str, Any]] = []
    actions = ActionRegistry()
    actions.register("exit_a", lambda ctx: seen.append(("exit_a", ctx["order_id"])))
    actions.register("move", lambda ctx, params: seen.append(("move", dict(params))))
    actions.register("enter_a", lambda ctx, **kw: seen.append(("enter_a", kw)))
    actions.register("enter_b", lambda: seen.append(("enter_b", None)))
    result = _result(
        _call("enter_a", ActionPhase.ENTER, amount=3),
        _call("move", ActionPhase.TRANSITION, to="B"),
        _call("exit_a", ActionPhase.EXIT),
        _call("enter_b", ActionPhase.ENTER),
    )
    report = ActionExecutor(actions).execute(result, {"order_id": "o-1"})
    assert seen == [
        ("exit_a", "o-1"),
        ("move", {"to": "B"}),
        ("enter_a", {"amount": 3}),
        ("enter_b", None),
    ]
    assert report.success and report.succeeded == ("exit_a", "move", "enter_a", "enter_b")
    assert report.failed == () and all(o.attempts == 1 for o in report.outcomes)


def test_execute_accepts_plain_call_lists_sorted_by_phase() -> None:
    order: list[str] = []
    actions = ActionRegistry()
    for name in ("e", "t", "x"):
        actions.register(name, lambda ctx, n=name: order.append(n))
    calls = [
        _call("e", ActionPhase.ENTER),
        _call("t", ActionPhase.TRANSITION),
        _call("x", ActionPhase.EXIT),
    ]
    ActionExecutor(actions).execute(calls, {})
    assert order == ["x", "t", "e"]


def test_failed_result_runs_nothing() -> None:
    actions = ActionRegistry()
    report = ActionExecutor(actions).execute(
        _result(_call("never_registered", ActionPhase.ENTER), success=False), {}
    )
    assert report == ExecutionReport() and report.success


def test_missing_action_raises_before_anything_runs() -> None:
    ran: list[str] = []
    actions = ActionRegistry()
    actions.register("first", lambda ctx: ran.append("first"))
    result = _result(_call("first", ActionPhase.EXIT), _call("ghost", ActionPhase.ENTER))
    with pytest.raises(ActionNotFoundError) as info:
        ActionExecutor(actions).execute(result, {})
    assert info.value.action_name == "ghost" and ran == []


def test_failure_raises_action_execution_error_with_cause_and_stops() -> None:
    ran: list[str] = []
    actions = ActionRegistry()

    def boom(ctx: Mapping[str, Any]) -> None:
        raise KeyError("position")

    actions.register("boom", boom)
    actions.register("after", lambda ctx: ran.append("after"))
    result = _result(_call("boom", ActionPhase.TRANSITION), _call("after", ActionPhase.ENTER))
    with pytest.raises(ActionExecutionError) as info:
        ActionExecutor(actions).execute(result, {})
    assert info.value.action_name == "boom"
    assert isinstance(info.value.__cause__, KeyError)
    assert ran == []


def test_raise_on_error_false_reports_failures_and_continues() -> None:
    ran: list[str] = []
    actions = ActionRegistry()
    actions.register("boom", lambda ctx: 1 / 0)
    actions.register("after", lambda ctx: ran.append("after"))
    result = _result(_call("boom", ActionPhase.TRANSITION), _call("after", ActionPhase.ENTER))
    report = ActionExecutor(actions, raise_on_error=False).execute(result, {})
    assert ran == ["after"]
    assert not report.success
    assert report.failed == ("boom",) and report.succeeded == ("after",)
    (failure,) = report.failures
    assert isinstance(failure.error, ActionExecutionError)
    assert isinstance(failure.error.__cause__, ZeroDivisionError)


def test_retry_policy_backoff_is_capped() -> None:
    policy = RetryPolicy(max_attempts=5, backoff_seconds=1.0, multiplier=3.0, max_backoff_seconds=5)
    assert [policy.delay_after(n) for n in (1, 2, 3, 4)] == [1.0, 3.0, 5, 5]
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError):
        RetryPolicy(multiplier=0.5)


def test_retries_with_injected_sleep_then_succeeds() -> None:
    sleeps: list[float] = []
    flaky = _Flaky(failures=2)
    actions = ActionRegistry()
    actions.register("flaky", flaky)
    executor = ActionExecutor(
        actions,
        retry=RetryPolicy(max_attempts=3, backoff_seconds=0.5, multiplier=2.0),
        sleep=sleeps.append,
    )
    report = executor.execute([_call("flaky", ActionPhase.ENTER)], {})
    assert report.success and report.outcomes[0].attempts == 3
    assert report.outcomes[0].value == "ok"
    assert sleeps == [0.5, 1.0] and flaky.calls == 3


def test_retries_exhausted_keeps_last_cause() -> None:
    sleeps: list[float] = []
    actions = ActionRegistry()
    actions.register("flaky", _Flaky(failures=10))
    executor = ActionExecutor(actions, retry=RetryPolicy(max_attempts=2), sleep=sleeps.append)
    with pytest.raises(ActionExecutionError, match="after 2 attempt") as info:
        executor.execute([_call("flaky", ActionPhase.ENTER)], {})
    assert str(info.value.__cause__) == "attempt 2" and len(sleeps) == 1


def test_sync_execute_runs_async_actions_outside_a_loop() -> None:
    seen: list[int] = []
    actions = ActionRegistry()

    async def record(ctx: Mapping[str, Any], params: Mapping[str, Any]) -> None:
        await asyncio.sleep(0)
        seen.append(params["n"])

    actions.register("record", record)
    ActionExecutor(actions).execute([_call("record", ActionPhase.ENTER, n=7)], {})
    assert seen == [7]


def test_sync_execute_of_async_action_inside_a_loop_fails_clearly() -> None:
    actions = ActionRegistry()
    actions.register("a", _async_action)

    async def main() -> ExecutionReport:
        return ActionExecutor(actions, raise_on_error=False).execute(
            [_call("a", ActionPhase.ENTER)], {}
        )

    report = asyncio.run(main())
    assert "async_execute" in str(report.failures[0].error)


# --- async execution -------------------------------------------------------------------------


def test_async_execute_mixes_sync_and_async_in_order() -> None:
    seen: list[str] = []
    actions = ActionRegistry()

    async def slow(ctx: Mapping[str, Any]) -> None:
        await asyncio.sleep(0)
        seen.append("slow")

    actions.register("slow", slow)
    actions.register("fast", lambda ctx: seen.append("fast"))
    result = _result(_call("slow", ActionPhase.EXIT), _call("fast", ActionPhase.ENTER))
    report = asyncio.run(ActionExecutor(actions).async_execute(result, {}))
    assert seen == ["slow", "fast"] and report.success


def test_async_retries_use_injected_async_sleep() -> None:
    sleeps: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        sleeps.append(seconds)

    actions = ActionRegistry()
    actions.register("flaky", _Flaky(failures=1))
    executor = ActionExecutor(
        actions, retry=RetryPolicy(max_attempts=2, backoff_seconds=0.25), async_sleep=fake_sleep
    )
    report = asyncio.run(executor.async_execute([_call("flaky", ActionPhase.ENTER)], {}))
    assert report.outcomes[0].attempts == 2 and sleeps == [0.25]


def test_parallel_runs_a_phase_concurrently_and_phases_in_order() -> None:
    events: list[str] = []
    actions = ActionRegistry()
    gate = asyncio.Event

    async def run() -> ExecutionReport:
        both_started = gate()
        started: set[str] = set()

        def make(name: str) -> Any:
            async def action(ctx: Mapping[str, Any]) -> None:
                events.append(f"start {name}")
                started.add(name)
                if len(started) == 2:
                    both_started.set()
                await asyncio.wait_for(both_started.wait(), timeout=5)  # needs concurrency
                events.append(f"end {name}")

            return action

        actions.register("a", make("a"))
        actions.register("b", make("b"))
        actions.register("enter", lambda ctx: events.append("enter"))
        result = _result(
            _call("a", ActionPhase.TRANSITION),
            _call("b", ActionPhase.TRANSITION),
            _call("enter", ActionPhase.ENTER),
        )
        return await ActionExecutor(actions).async_execute_parallel(result, {})

    report = asyncio.run(run())
    assert events[:2] == ["start a", "start b"]
    assert events[-1] == "enter"
    assert report.succeeded == ("a", "b", "enter")


def test_parallel_failure_finishes_the_phase_then_raises() -> None:
    events: list[str] = []
    actions = ActionRegistry()

    async def bad(ctx: Mapping[str, Any]) -> None:
        raise RuntimeError("nope")

    async def good(ctx: Mapping[str, Any]) -> None:
        await asyncio.sleep(0)
        events.append("good")

    actions.register("bad", bad)
    actions.register("good", good)
    actions.register("later", lambda ctx: events.append("later"))
    result = _result(
        _call("bad", ActionPhase.EXIT),
        _call("good", ActionPhase.EXIT),
        _call("later", ActionPhase.ENTER),
    )
    with pytest.raises(ActionExecutionError) as info:
        asyncio.run(ActionExecutor(actions).async_execute_parallel(result, {}))
    assert isinstance(info.value.__cause__, RuntimeError)
    assert events == ["good"]

    report = asyncio.run(
        ActionExecutor(actions, raise_on_error=False).async_execute_parallel(result, {})
    )
    assert report.failed == ("bad",) and report.succeeded == ("good", "later")
