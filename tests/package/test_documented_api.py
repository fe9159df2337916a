"""The documented Python API (issue 16): names, machine members, results, sessions, guards,
actions. Hooks, stores and schedulers have their own files (test_documented_hooks.py,
test_documented_stores.py)."""

from __future__ import annotations

import asyncio
import importlib
import json
import logging
from typing import Any

import pytest

import pystator
from pystator import (
    ActionExecutor,
    ActionRegistry,
    ActionResult,
    ActionSpec,
    EntitySession,
    Event,
    ExecutionMode,
    FSMError,
    GuardNotFoundError,
    GuardRegistry,
    GuardResult,
    GuardSpec,
    Region,
    State,
    StateMachine,
    StateType,
    Timeout,
    Transition,
    TransitionResult,
    UndefinedStateError,
)
from pystator.fsm_core.actions import ActionOutcome, ExecutionReport
from pystator.fsm_core.definition import (
    RegionSpec,
    StateKind,
    StateSpec,
    TimeoutSpec,
    TransitionSpec,
)
from pystator.fsm_core.records import EventInput
from pystator.fsm_core.results import SharedMetadata

ORDER = {
    "meta": {"machine_name": "orders", "version": "1.0.0"},
    "states": [
        {"name": "PENDING", "type": "initial", "timeout": {"seconds": 30, "destination": "LOST"}},
        {"name": "OPEN", "type": "stable"},
        {"name": "FILLED", "type": "terminal"},
        {"name": "LOST", "type": "terminal"},
    ],
    "transitions": [
        {"trigger": "exchange_ack", "source": "PENDING", "dest": "OPEN"},
        {
            "trigger": "fill",
            "source": "OPEN",
            "dest": "FILLED",
            "guards": ["is_full_fill"],
            "actions": ["notify"],
        },
        {
            "trigger": "bump",
            "source": "OPEN",
            "dest": "OPEN",
            "actions": [{"increment": "bumps"}],
        },
    ],
}


def machine() -> StateMachine:
    m = StateMachine.from_dict(ORDER)
    m.guard_registry.register("is_full_fill", lambda ctx: ctx.get("qty", 0) >= 10)
    m.action_registry.register("notify", lambda ctx: None)
    return m


# --- names -----------------------------------------------------------------------------------


DOCUMENTED_ROOT_NAMES = [
    "StateType",
    "State",
    "Transition",
    "Event",
    "Region",
    "Timeout",
    "GuardSpec",
    "ActionSpec",
    "GuardResult",
    "ActionResult",
    "ExecutionMode",
    "config",
    "StateMachine",
    "StateMachineBuilder",
    "EntitySession",
    "GuardRegistry",
    "ActionRegistry",
    "ActionExecutor",
    "Orchestrator",
    "InMemoryStateStore",
    "StateStore",
    "AsyncStateStore",
    "TransitionResult",
    "TransitionHook",
    "TransitionObserver",
    "LoggingHook",
    "MetricsCollector",
    "StructuredLoggingHook",
    "DwellTimeTracker",
    "ContextValidatorFn",
    "ErrorCode",
    "TimeoutExpiredError",
    "equals",
    "greater_than",
    "in_list",
    "all_of",
    "any_of",
    "negate",
    "SQLiteStateStore",
    "PostgresStateStore",
    "RedisStateStore",
    "DestinationCheckResult",
]

DOCUMENTED_MODULE_NAMES = {
    "pystator.machine": ["StateMachine", "StateMachineBuilder"],
    "pystator.instance": ["EntitySession", "EventRecorder", "RecordedEvent"],
    "pystator.guards": [
        "GuardRegistry",
        "GuardResult",
        "equals",
        "greater_than",
        "in_list",
        "all_of",
        "any_of",
        "negate",
    ],
    "pystator.actions": ["ActionRegistry", "ActionExecutor", "ExecutionMode", "ActionResult"],
    "pystator.hooks": [
        "TransitionHook",
        "TransitionMetrics",
        "LoggingHook",
        "MetricsCollector",
        "TransitionObserver",
        "StructuredLoggingHook",
        "DwellTimeTracker",
    ],
    "pystator.errors": [
        "FSMError",
        "ConfigurationError",
        "InvalidTransitionError",
        "GuardRejectedError",
        "UndefinedStateError",
        "UndefinedTriggerError",
        "GuardNotFoundError",
        "ActionNotFoundError",
        "TimeoutExpiredError",
        "TerminalStateError",
        "StaleVersionError",
        "ErrorCode",
    ],
    "pystator.stores": ["StateStore", "AsyncStateStore", "InMemoryStateStore"],
    "pystator.stores.base": ["StateStore", "AsyncStateStore"],
    "pystator.scheduler": ["AsyncioScheduler", "RedisScheduler", "CeleryScheduler"],
    "pystator.config": ["ports", "validate_config", "validate_machine_config"],
    "pystator.context": ["TransitionContext"],
    "pystator.core": ["StateMachine", "EntitySession", "State", "Transition", "Event"],
    "pystator.behavior": ["GuardRegistry", "ActionRegistry", "ActionExecutor", "equals"],
    "pystator.observability": ["lint", "to_mermaid", "MetricsCollector", "LoggingHook"],
}


@pytest.mark.parametrize("name", DOCUMENTED_ROOT_NAMES)
def test_documented_names_import_from_pystator(name: str) -> None:
    assert name in pystator.__all__
    assert getattr(pystator, name) is not None


@pytest.mark.parametrize(
    ("module", "name"), [(m, n) for m, names in DOCUMENTED_MODULE_NAMES.items() for n in names]
)
def test_documented_module_paths(module: str, name: str) -> None:
    assert getattr(importlib.import_module(module), name) is not None


def test_data_names_are_the_definition_model_itself() -> None:
    # one model with its documented names, not a second model beside it
    assert State is StateSpec and Transition is TransitionSpec and Region is RegionSpec
    assert Timeout is TimeoutSpec and StateType is StateKind and Event is EventInput
    assert ActionResult is ActionOutcome and pystator.actions.ExecutionResult is ExecutionReport
    assert GuardSpec.__module__ == ActionSpec.__module__ == "pystator.fsm_core.definition"
    assert pystator.errors.TimeoutExpiredError is pystator.FSMTimeoutError
    assert pystator.config.ports.API_PORT == pystator.config.settings.DEFAULT_API_PORT


def test_state_and_transition_read_as_documented() -> None:
    m = machine()
    pending = m.get_state("PENDING")
    assert isinstance(pending, State)
    assert pending.type is StateType.INITIAL and pending.is_initial and not pending.is_terminal
    assert isinstance(pending.timeout, Timeout) and pending.timeout.dest == "LOST"
    assert m.get_state("FILLED").is_terminal  # type: ignore[union-attr]
    assert m.get_state("NOPE") is None
    (fill,) = [t for t in m.transitions if t.trigger == "fill"]
    assert isinstance(fill, Transition) and fill.source == frozenset({"OPEN"})
    assert fill.dest == "FILLED" and fill.after is None and not fill.is_delayed
    assert fill.matches("OPEN", "fill") and not fill.matches("PENDING", "fill")
    assert isinstance(fill.guards[0], GuardSpec) and fill.guards[0].name == "is_full_fill"
    assert isinstance(fill.actions[0], ActionSpec) and fill.actions[0].name == "notify"
    event = Event(trigger="fill", context={"qty": 3})
    assert event.name == "fill" and event.payload == {"qty": 3}


def test_parallel_regions_are_region_objects() -> None:
    m = StateMachine.from_dict(
        {
            "meta": {"machine_name": "p"},
            "states": [
                {"name": "idle", "type": "initial"},
                {
                    "name": "active",
                    "type": "parallel",
                    "regions": [
                        {"name": "a", "initial": "a1", "states": [{"name": "a1"}]},
                        {"name": "b", "initial": "b1", "states": [{"name": "b1"}]},
                    ],
                },
            ],
            "transitions": [],
        }
    )
    state = m.get_state("active")
    assert state is not None and state.is_parallel
    assert [r.name for r in state.regions] == ["a", "b"]
    assert all(isinstance(r, Region) for r in state.regions)
    assert m.is_parallel_state("active") and not m.is_parallel_state("idle")
    config = m.enter_parallel_state("active")
    assert isinstance(config, pystator.ParallelStateConfig)
    assert config.parallel_state == "active" and config.region_states == {"a": "a1", "b": "b1"}
    assert config.get_region_state("b") == "b1" and config.get_region_state("z") is None
    assert config.is_in_state("a1") and config.is_in_state("active") and not config.is_in_state("x")
    assert config.get_all_active() == ["a1", "b1"] and config.to_string() == config.encoded
    same, results = asyncio.run(m.aprocess_parallel(config, "nothing_here", {}))
    assert same is config and not results[0].success


# --- StateMachine members ----------------------------------------------------------------------


def test_machine_queries() -> None:
    m = machine()
    assert m.state_names == ["PENDING", "OPEN", "FILLED", "LOST"]
    assert set(m.trigger_names) >= {"exchange_ack", "fill", "bump"}
    assert m.trigger_names == sorted(m.trigger_names)
    assert m.terminal_states == frozenset({"FILLED", "LOST"})
    assert m.is_terminal("FILLED") and not m.is_terminal("OPEN")
    m.validate_state("OPEN")
    with pytest.raises(UndefinedStateError):
        m.validate_state("NOWHERE")
    assert m.can_transition("OPEN", "fill", {"qty": 10})
    assert not m.can_transition("OPEN", "fill", {"qty": 1})
    assert not m.can_transition("PENDING", "fill")


def test_on_enter_and_on_exit_callbacks_run_in_sessions() -> None:
    m = machine()
    seen: list[tuple[str, Any]] = []
    m.on_exit("PENDING", lambda ctx: seen.append(("exit PENDING", ctx.get("n"))))

    @m.on_enter("OPEN")
    def entered(ctx: dict[str, Any]) -> None:
        seen.append(("enter OPEN", ctx.get("n")))

    def broken(ctx: dict[str, Any]) -> None:
        raise RuntimeError("callback bug")

    m.on_enter("OPEN", broken)  # a failing callback never undoes the transition
    session = m.create(context={"n": 1})
    assert session.send("exchange_ack").success
    assert seen == [("exit PENDING", 1), ("enter OPEN", 1)]
    assert session.current_state == "OPEN"
    with pytest.raises(UndefinedStateError):
        m.on_enter("NOWHERE", entered)


# --- results -----------------------------------------------------------------------------------


def test_metadata_is_a_dict_everywhere() -> None:
    m = machine()
    rejected = m.process("OPEN", "fill", {"qty": 1})
    assert type(rejected.metadata) is dict
    assert rejected.metadata["reason"] == "guard_rejected"
    assert rejected.metadata["guard_name"] == "is_full_fill"
    rejected.metadata["seen_by"] = "me"  # a result built per call is the caller's to change
    assert "seen_by" not in m.process("OPEN", "fill", {"qty": 1}).metadata

    ok = m.process("PENDING", "exchange_ack", {})
    assert isinstance(ok.metadata, dict) and ok.metadata == {}
    copied = dict(ok.metadata) | {"k": 1}
    assert copied == {"k": 1} and ok.metadata.copy() == {} and type(ok.metadata.copy()) is dict
    # the engine shares this plain success between calls: changing it in place is refused
    # instead of leaking into every later result
    assert isinstance(ok.metadata, SharedMetadata)
    with pytest.raises(TypeError, match="copy it first"):
        ok.metadata["k"] = 1
    with pytest.raises(TypeError):
        ok.metadata.update(k=1)
    assert m.process("PENDING", "exchange_ack", {}).metadata == {}

    effects = m.process("OPEN", "bump", {"bumps": 1})
    assert type(effects.metadata) is dict
    effects.metadata["mine"] = True
    assert m.process("OPEN", "bump", {"bumps": 1}).metadata == {}


def test_result_action_names_as_documented() -> None:
    result = machine().process("OPEN", "fill", {"qty": 10})
    assert [a.name for a in result.actions_to_execute] == ["notify"]
    assert result.on_exit_actions == result.exit_actions == ()
    assert result.on_enter_actions == result.enter_actions
    assert result.all_action_specs == result.actions and result.all_actions == ("notify",)


def test_success_and_failure_result_constructors() -> None:
    ok = TransitionResult.success_result("A", "B", "go", metadata={"k": 1})
    assert ok.success and ok.target_state == "B" and ok.metadata == {"k": 1}
    assert type(ok.metadata) is dict and ok.error is None and ok.all_actions == ()
    failed = TransitionResult.failure_result("A", "go", "no way")
    assert not failed.success and failed.target_state is None
    assert isinstance(failed.error, FSMError) and str(failed.error) == "no way"
    assert failed.metadata["reason"] == failed.error.code.value.lower()
    rejected = TransitionResult.failure_result(
        "A", "go", pystator.GuardRejectedError("nope", guard_name="g"), metadata={"reason": "x"}
    )
    assert rejected.metadata == {"reason": "x"}
    assert isinstance(rejected.error, pystator.GuardRejectedError)


# --- EntitySession -----------------------------------------------------------------------------


def test_create_with_entity_id_and_history() -> None:
    m = machine()
    session = m.create(entity_id="order-1", context={"qty": 10})
    assert session.entity_id == "order-1"
    assert m.create(context={"_entity_id": "order-2"}).entity_id == "order-2"
    assert m.create().entity_id is None
    assert EntitySession(m, entity_id="order-3").entity_id == "order-3"
    session.send("exchange_ack")
    session.send("exchange_ack")  # rejected in OPEN: recorded too
    session.send("fill")
    assert [r.trigger for r in session.history] == ["exchange_ack", "exchange_ack", "fill"]
    assert [r.success for r in session.history] == [True, False, True]
    restored = m.create_from_snapshot(session.snapshot())
    assert restored.current_state == "FILLED" and restored.entity_id == "order-1"
    assert session.snapshot()["current_state"] == "FILLED"


def test_execute_actions_runs_actions_locally() -> None:
    m = machine()
    ran: list[Any] = []
    m.action_registry.register("notify", lambda ctx: ran.append(ctx.get("_entity_id")))
    plain = m.create(context={"qty": 10}, initial_state="OPEN")
    assert plain.send("fill").success and ran == []  # planned only, by default
    acting = m.create(context={"qty": 10}, initial_state="OPEN", execute_actions=True)
    acting_id = m.create(
        entity_id="o-9", context={"qty": 10}, initial_state="OPEN", execute_actions=True
    )
    result = acting.send("fill")
    acting_id.send("fill")
    assert ran == [None, "o-9"]
    assert result.metadata["action_results"] == [
        {"name": "notify", "status": "ok", "attempts": 1, "error": None}
    ]
    m.action_registry.register("notify", lambda ctx: 1 / 0)
    failing = m.create(context={"qty": 10}, initial_state="OPEN", execute_actions=True)
    (row,) = failing.send("fill").metadata["action_results"]
    assert row["status"] == "failed" and "ZeroDivisionError" in row["error"]
    assert failing.current_state == "FILLED"  # actions run after the state change


def test_deferred_events_replay_after_the_next_transition() -> None:
    m = machine()
    session = m.create(context={"qty": 10}, defer_unhandled=True)
    deferred = session.send("fill", qty=10)
    assert not deferred.success and deferred.metadata["reason"] == "deferred"
    assert session.deferred_events == [("fill", {"qty": 10})]
    assert session.send("exchange_ack").success
    assert session.current_state == "FILLED" and session.deferred_events == []
    session2 = m.create(defer_unhandled=True)
    session2.send("fill")
    session2.clear_deferred()
    assert session2.deferred_events == []


def test_event_recorder_records_and_replays(tmp_path: Any) -> None:
    m = machine()
    recorder = m.create(context={"qty": 10}).record()
    recorder.send("exchange_ack")
    recorder.send("fill", qty=12)
    assert [e.trigger for e in recorder.events] == ["exchange_ack", "fill"]
    assert recorder.current_state == "FILLED"  # reads through to the session
    saved = json.dumps([e.to_dict() for e in recorder.events])
    events = [pystator.RecordedEvent.from_dict(d) for d in json.loads(saved)]
    assert events[1].payload == {"qty": 12}
    fresh = m.create()
    results = recorder.replay(fresh)
    assert [r.success for r in results] == [True, True] and fresh.current_state == "FILLED"


def test_evaluate_destination_and_can_transition_to() -> None:
    m = machine()
    session = m.create(initial_state="OPEN")
    check = session.evaluate_destination("FILLED", context_overrides={"qty": 10})
    assert isinstance(check, pystator.DestinationCheckResult)
    assert check.allowed and check.passing_count == 1 and not check.is_ambiguous
    assert [c.trigger for c in check.candidates] == ["fill"] and check.candidates[0].executable
    blocked = session.evaluate_destination("FILLED")
    assert not blocked.allowed and blocked.candidate_count == 1
    assert blocked.candidates[0].reason == "guard_rejected"
    assert blocked.metadata["reason"] == "no_executable_transition"
    assert session.can_transition_to("FILLED", context_overrides={"qty": 10})
    assert not session.can_transition_to("FILLED")
    assert "qty" not in session.context  # overrides never stick
    assert m.evaluate_destination("OPEN", "NOWHERE").metadata["reason"] == "undefined_destination"
    assert m.evaluate_destination("PENDING", "FILLED").metadata["reason"] == (
        "no_transition_to_destination"
    )
    assert m.can_transition_to("PENDING", "OPEN")
    two_ways = StateMachine.from_dict(
        {
            "meta": {"machine_name": "two"},
            "states": [{"name": "A", "type": "initial"}, {"name": "B", "type": "terminal"}],
            "transitions": [
                {"trigger": "x", "source": "A", "dest": "B"},
                {"trigger": "y", "source": "A", "dest": "B"},
            ],
        }
    )
    ambiguous = two_ways.evaluate_destination("A", "B")
    assert ambiguous.is_ambiguous and ambiguous.metadata["ambiguous"] is True


# --- guards ------------------------------------------------------------------------------------


def test_guard_registry_documented_members() -> None:
    guards = GuardRegistry()
    guards.register("big", lambda ctx: ctx["qty"] > 5)
    guards.register("broken", lambda ctx: ctx["missing"])
    assert guards.has("big") and not guards.has("nope") and guards.strict
    passed = guards.evaluate("big", {"qty": 9})
    assert isinstance(passed, GuardResult) and passed and passed.guard_name == "big"
    failed = guards.evaluate("big", {"qty": 1})
    assert not failed and failed.guard_name == "big" and "returned False" in (failed.message or "")
    raised = guards.evaluate("broken", {})
    assert not raised and isinstance(raised.error, pystator.GuardEvaluationError)
    with pytest.raises(GuardNotFoundError):
        guards.evaluate("nope", {})
    assert guards.evaluate_all(["big"], {"qty": 9})
    first_failure = guards.evaluate_all(["big", "broken"], {"qty": 9})
    assert not first_failure and first_failure.guard_name == "broken"
    assert asyncio.run(guards.async_evaluate("big", {"qty": 9}))


def test_non_strict_registry_lets_unknown_guards_pass() -> None:
    lenient = GuardRegistry(strict=False)
    assert lenient.evaluate("whatever", {})
    m = StateMachine.from_dict(ORDER)
    with pytest.raises(GuardNotFoundError):
        m.process("OPEN", "fill", {})
    m.bind_guards(lenient)
    assert m.process("OPEN", "fill", {}).success


def test_guard_registry_can_transition_evaluates_every_guard_kind() -> None:
    m = StateMachine.from_dict(
        {
            "meta": {"machine_name": "g"},
            "states": [{"name": "A", "type": "initial"}, {"name": "B", "type": "terminal"}],
            "transitions": [
                {
                    "trigger": "go",
                    "source": "A",
                    "dest": "B",
                    "guards": [
                        "named_ok",
                        {"expr": "qty > 2"},
                        {"check": {"field": "status", "op": "eq", "value": "ready"}},
                    ],
                }
            ],
        }
    )
    guards = GuardRegistry()
    guards.register("named_ok", lambda ctx: ctx.get("ok", False))
    (go,) = m.transitions
    assert guards.can_transition(go, {"ok": True, "qty": 3, "status": "ready"})
    assert not guards.can_transition(go, {"ok": True, "qty": 1, "status": "ready"})
    assert not guards.can_transition(go, {"ok": True, "qty": 3, "status": "new"})
    assert not guards.can_transition(go, {"qty": 3, "status": "ready"})
    assert asyncio.run(guards.async_can_transition(go, {"ok": 1, "qty": 3, "status": "ready"}))


def test_guard_helpers() -> None:
    from pystator.guards import all_of, any_of, equals, greater_than, in_list, negate

    ready = equals("status", "ready")
    big = greater_than("order.qty", 10)
    vip = in_list("tier", ["gold", "platinum"])
    assert ready({"status": "ready"}) and not ready({"status": "new"}) and not ready({})
    assert big({"order": {"qty": 11}}) and not big({"order": {"qty": 10}}) and not big({})
    assert not big({"order": {"qty": "many"}})  # not comparable: false, not an error
    assert vip({"tier": "gold"}) and not vip({"tier": "tin"})
    rule = all_of(ready, any_of(big, vip), negate(equals("deleted", True)))
    assert rule({"status": "ready", "tier": "gold"})
    assert not rule({"status": "ready", "tier": "gold", "deleted": True})
    assert not rule({"status": "ready", "tier": "tin"})
    assert "equals('status', 'ready')" in rule.__name__
    with pytest.raises(ValueError):
        all_of()
    with pytest.raises(TypeError):
        negate("not a guard")  # type: ignore[arg-type]
    guards = GuardRegistry()
    guards.register("ready", ready)
    assert guards.evaluate("ready", {"status": "ready"})


# --- actions -----------------------------------------------------------------------------------


def test_action_registry_documented_members() -> None:
    actions = ActionRegistry()
    calls: list[Any] = []
    actions.register("log", lambda ctx, **params: calls.append(params), metadata={"owner": "ops"})
    actions.register("boom", lambda ctx: 1 / 0)
    assert actions.has("log") and not actions.has("nope")
    assert actions.get_metadata("log") == {"owner": "ops"} and actions.get_metadata("boom") == {}
    actions.execute("log", {}, level="info")
    assert calls == [{"level": "info"}]
    with pytest.raises(ZeroDivisionError):
        actions.execute("boom", {})
    with pytest.raises(pystator.ActionNotFoundError):
        actions.execute("nope", {})
    results = actions.execute_all(["log", "boom", "nope", "log"], {})
    assert [r.status for r in results] == ["ok", "failed", "failed", "ok"]
    assert all(isinstance(r, ActionResult) for r in results)
    assert isinstance(results[2].error, pystator.ActionNotFoundError)
    stopped = actions.execute_all(["boom", "log"], {}, stop_on_error=True)
    assert [r.name for r in stopped] == ["boom"]


def test_action_executor_modes_and_logging(caplog: pytest.LogCaptureFixture) -> None:
    m = machine()
    result = m.process("OPEN", "fill", {"qty": 10})
    ran: list[str] = []
    m.action_registry.register("notify", lambda ctx: ran.append("notify"))
    executor = ActionExecutor(m.action_registry, ExecutionMode.PHASED, log_execution=True)
    assert executor.default_mode is ExecutionMode.PHASED and executor.log_execution
    with caplog.at_level(logging.INFO, logger="pystator.actions"):
        report = executor.execute(result, {"qty": 10})
    assert report.success and ran == ["notify"]
    assert any("action notify" in r.getMessage() for r in caplog.records)
    quiet = ActionExecutor(m.action_registry)
    assert quiet.default_mode is ExecutionMode.SEQUENTIAL and not quiet.log_execution
    for mode in ExecutionMode:
        asyncio.run(quiet.async_execute_with_mode(result, {}, mode))
    asyncio.run(quiet.async_execute_phased(result, {}))
    asyncio.run(ActionExecutor(m.action_registry, ExecutionMode.PARALLEL).async_execute(result, {}))
    assert ran == ["notify"] * 6


def test_orchestrator_actions_see_the_documented_context_keys() -> None:
    from pystator import InMemoryStateStore, Orchestrator
    from pystator.context import TransitionContext

    m = machine()
    seen: list[TransitionContext] = []
    m.action_registry.register("notify", lambda ctx: seen.append(ctx))
    orchestrator = Orchestrator(m, InMemoryStateStore())
    orchestrator.process_event("o-1", "exchange_ack", {})
    orchestrator.process_event("o-1", "fill", {"qty": 10})
    (ctx,) = seen
    assert isinstance(ctx, TransitionContext) and ctx.entity_id == "o-1"
    assert isinstance(ctx.event, Event) and ctx.event.trigger == "fill"
    assert ctx.event.payload == {"qty": 10} and ctx.user_data() == {"qty": 10}
