"""The documented hook protocol: four callbacks in order on success, rejection and error, through
``StateMachine(hooks=…)`` and ``Orchestrator(hooks=…)``; failing hooks never break a transition;
the documented metrics hooks."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

import pytest

from pystator import (
    DwellTimeTracker,
    InMemoryStateStore,
    LoggingHook,
    MetricsCollector,
    Orchestrator,
    StateMachine,
    StructuredLoggingHook,
    TransitionHook,
    TransitionResult,
    UndefinedStateError,
)
from pystator.hooks import TransitionMetrics

CONFIG = {
    "meta": {"machine_name": "orders"},
    "states": [
        {"name": "PENDING", "type": "initial"},
        {"name": "OPEN", "type": "stable"},
        {"name": "FILLED", "type": "terminal"},
    ],
    "transitions": [
        {"trigger": "ack", "source": "PENDING", "dest": "OPEN"},
        {"trigger": "fill", "source": "OPEN", "dest": "FILLED", "guards": ["full"]},
        {"trigger": "explode", "source": "OPEN", "dest": "FILLED", "guards": ["raises"]},
        {"trigger": "ship", "source": "OPEN", "dest": "FILLED", "actions": ["failing_action"]},
    ],
}


class Recorder:
    """Implements the documented four-method protocol and records every call."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def on_before_process(
        self, entity_id: str | None, current_state: str, trigger: str, context: Mapping[str, Any]
    ) -> None:
        self.calls.append(("before_process", entity_id, current_state, trigger))

    def on_transition_start(
        self, current_state: str, trigger: str, context: Mapping[str, Any]
    ) -> None:
        self.calls.append(("start", current_state, trigger))

    def on_transition_complete(
        self, result: TransitionResult, duration_ms: float, context: Mapping[str, Any]
    ) -> None:
        assert duration_ms >= 0 and isinstance(context, Mapping)
        self.calls.append(("complete", result.source_state, result.target_state, result.success))

    def on_transition_error(
        self, error: Exception, current_state: str, trigger: str, context: Mapping[str, Any]
    ) -> None:
        self.calls.append(("error", type(error).__name__, current_state, trigger))


class Broken:
    """Every callback raises: the transition must not notice (beyond a logged error)."""

    def on_before_process(self, *args: Any) -> None:
        raise RuntimeError("hook bug")

    def on_transition_start(self, *args: Any) -> None:
        raise RuntimeError("hook bug")

    def on_transition_complete(self, *args: Any) -> None:
        raise RuntimeError("hook bug")

    def on_transition_error(self, *args: Any) -> None:
        raise RuntimeError("hook bug")


def _machine(**kw: Any) -> StateMachine:
    m = StateMachine.from_dict(CONFIG, **kw)
    m.guard_registry.register("full", lambda ctx: ctx.get("qty", 0) >= 10)
    m.guard_registry.register("raises", lambda ctx: 1 / 0)
    m.action_registry.register("failing_action", lambda ctx: 1 / 0)
    return m


def test_recorder_and_builtins_satisfy_the_protocol() -> None:
    for hook in (Recorder(), LoggingHook(), StructuredLoggingHook()):
        assert isinstance(hook, TransitionHook)


def test_orchestrator_hooks_get_four_callbacks_in_order() -> None:
    rec = Recorder()
    orchestrator = Orchestrator(machine=_machine(), store=InMemoryStateStore(), hooks=[rec])
    assert orchestrator.process_event("o-1", "ack", {}).success
    assert rec.calls == [
        ("before_process", "o-1", "PENDING", "ack"),
        ("start", "PENDING", "ack"),
        ("complete", "PENDING", "OPEN", True),
    ]
    rec.calls.clear()
    assert not orchestrator.process_event("o-1", "fill", {"qty": 1}).success  # rejection
    assert rec.calls == [
        ("before_process", "o-1", "OPEN", "fill"),
        ("start", "OPEN", "fill"),
        ("complete", "OPEN", None, False),
    ]
    rec.calls.clear()
    with pytest.raises(Exception, match="raised ZeroDivisionError"):
        orchestrator.process_event("o-1", "explode", {})  # a guard that raises: an error
    assert rec.calls == [
        ("before_process", "o-1", "OPEN", "explode"),
        ("start", "OPEN", "explode"),
        ("error", "GuardEvaluationError", "OPEN", "explode"),
    ]


def test_errors_around_the_evaluation_reach_the_hooks_once() -> None:
    rec = Recorder()
    orchestrator = Orchestrator(machine=_machine(), store=InMemoryStateStore(), hooks=[rec])
    orchestrator.process_event("o-2", "ack", {})
    rec.calls.clear()
    with pytest.raises(Exception, match="failing_action"):
        orchestrator.process_event("o-2", "ship", {})  # committed, then its action fails
    assert [c[0] for c in rec.calls] == ["before_process", "start", "complete", "error"]
    assert rec.calls[-1][1] == "ActionExecutionError"


def test_async_orchestrator_reports_the_same_sequence() -> None:
    rec = Recorder()
    orchestrator = Orchestrator(machine=_machine(), store=InMemoryStateStore(), hooks=[rec])
    result = asyncio.run(orchestrator.async_process_event("o-3", "ack", {}))
    assert result.success
    assert rec.calls[0] == ("before_process", "o-3", "PENDING", "ack")
    assert [c[0] for c in rec.calls] == ["before_process", "start", "complete"]


def test_machine_hooks_without_an_orchestrator() -> None:
    rec = Recorder()
    m = _machine(hooks=[rec])
    assert m.hooks == (rec,)
    m.process("PENDING", "ack", {})
    m.process("OPEN", "fill", {"_entity_id": "from-context"})
    with pytest.raises(UndefinedStateError):
        m.process("NOWHERE", "ack", {})
    assert rec.calls == [
        ("before_process", None, "PENDING", "ack"),
        ("start", "PENDING", "ack"),
        ("complete", "PENDING", "OPEN", True),
        ("before_process", "from-context", "OPEN", "fill"),
        ("start", "OPEN", "fill"),
        ("complete", "OPEN", None, False),
        ("before_process", None, "NOWHERE", "ack"),
        ("start", "NOWHERE", "ack"),
        ("error", "UndefinedStateError", "NOWHERE", "ack"),
    ]
    session = m.create(entity_id="s-1")
    rec.calls.clear()
    session.send("ack")
    assert rec.calls[0] == ("before_process", "s-1", "PENDING", "ack")
    m.remove_hook(rec)
    assert m.hooks == ()


def test_failing_hooks_never_break_a_transition(caplog: pytest.LogCaptureFixture) -> None:
    after = Recorder()
    store = InMemoryStateStore()
    orchestrator = Orchestrator(machine=_machine(), store=store, hooks=[Broken(), after])
    with caplog.at_level(logging.ERROR, logger="pystator.hooks"):
        assert orchestrator.process_event("o-4", "ack", {}).success
        assert not orchestrator.process_event("o-4", "fill", {}).success
    assert store.get_state("o-4") == "OPEN"
    assert len(after.calls) == 6  # the hook after the broken one still heard everything
    assert sum("hook bug" in str(r.exc_info[1]) for r in caplog.records if r.exc_info) == 6


def test_logging_hook_documented_options(caplog: pytest.LogCaptureFixture) -> None:
    hook = LoggingHook(log_level=logging.WARNING, logger_name="myapp.fsm")
    m = _machine(hooks=[hook])
    with caplog.at_level(logging.DEBUG, logger="myapp.fsm"):
        m.process("PENDING", "ack", {})
    (outcome,) = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert outcome.name == "myapp.fsm" and "ack: PENDING -> OPEN" in outcome.getMessage()


def test_structured_logging_hook_fields(caplog: pytest.LogCaptureFixture) -> None:
    hook = StructuredLoggingHook(include_context=True)
    orchestrator = Orchestrator(machine=_machine(), store=InMemoryStateStore(), hooks=[hook])
    with caplog.at_level(logging.DEBUG, logger="pystator.transitions"):
        orchestrator.process_event("o-5", "ack", {"qty": 3})
        orchestrator.process_event("o-5", "fill", {"qty": 3})
    records = {(r.getMessage(), r.fsm.get("trigger")): r.fsm for r in caplog.records}  # type: ignore[attr-defined]
    done = records[("fsm.transition_complete", "ack")]
    assert done["entity_id"] == "o-5" and done["target_state"] == "OPEN" and done["success"]
    assert done["context_keys"] == ["qty"]
    rejected = records[("fsm.transition_complete", "fill")]
    assert rejected["success"] is False and rejected["reason"] == "guard_rejected"
    assert records[("fsm.before_process", "ack")]["source_state"] == "PENDING"


def test_metrics_collector_documented_summary() -> None:
    metrics = MetricsCollector()
    orchestrator = Orchestrator(machine=_machine(), store=InMemoryStateStore(), hooks=[metrics])
    orchestrator.process_event("o-6", "ack", {})
    orchestrator.process_event("o-6", "fill", {"qty": 1})
    with pytest.raises(Exception, match="ZeroDivisionError"):
        orchestrator.process_event("o-6", "explode", {})
    summary = metrics.get_summary()
    assert summary["total_transitions"] == 3
    assert (summary["successful"], summary["failed"], summary["errors"]) == (1, 1, 1)
    assert summary["success_rate"] == pytest.approx(1 / 3)
    assert summary["by_trigger"] == {"ack": 1, "fill": 1, "explode": 1}
    assert summary["by_source_state"] == {"PENDING": 1, "OPEN": 2}
    assert summary["by_target_state"] == {"OPEN": 1}
    assert set(summary["duration"]) == {"min_ms", "max_ms", "avg_ms", "p50_ms", "p95_ms", "p99_ms"}
    recent = metrics.recent()
    assert all(isinstance(m, TransitionMetrics) for m in recent)
    assert [m.error_type for m in recent] == [None, None, "GuardEvaluationError"]
    metrics.reset()
    assert metrics.get_summary()["total_transitions"] == 0


def test_dwell_time_tracker() -> None:
    now = [100.0]
    tracker = DwellTimeTracker(clock=lambda: now[0])
    m = _machine(hooks=[tracker])
    orchestrator = Orchestrator(machine=m, store=InMemoryStateStore())
    orchestrator.process_event("o-7", "ack", {})  # enters OPEN at t=100
    now[0] = 100.5
    assert tracker.current_state("o-7") == "OPEN"
    assert tracker.current_dwell_ms("o-7") == pytest.approx(500.0)
    now[0] = 102.0
    orchestrator.process_event("o-7", "fill", {"qty": 10})  # leaves OPEN after 2 s
    m.process("PENDING", "ack", {})  # no entity: ignored
    assert tracker.get_dwell_times() == {
        "OPEN": {
            "count": 1,
            "total_ms": pytest.approx(2000.0),
            "avg_ms": pytest.approx(2000.0),
            "min_ms": pytest.approx(2000.0),
            "max_ms": pytest.approx(2000.0),
        }
    }
    assert tracker.current_dwell_ms("unknown") is None
    tracker.reset()
    assert tracker.get_dwell_times() == {}
