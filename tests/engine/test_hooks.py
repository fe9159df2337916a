"""TransitionObserver, LoggingHook and MetricsCollector."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import pytest

from pystator import (
    LoggingHook,
    MetricsCollector,
    TransitionHook,
    TransitionObserver,
    TransitionResult,
    UndefinedTriggerError,
)


def _ok(trigger: str = "go") -> TransitionResult:
    return TransitionResult(success=True, source_state="A", target_state="B", trigger=trigger)


def _rejected(trigger: str = "go") -> TransitionResult:
    return TransitionResult(
        success=False,
        source_state="A",
        target_state=None,
        trigger=trigger,
        error=UndefinedTriggerError("no", current_state="A", trigger=trigger),
        metadata={"reason": "undefined_trigger"},
    )


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def on_before_process(
        self, entity_id: str | None, state: str, trigger: str, context: Mapping[str, Any]
    ) -> None:
        self.calls.append(("before", state, trigger))

    def on_transition_start(self, state: str, trigger: str, context: Mapping[str, Any]) -> None:
        self.calls.append(("start", state, trigger))

    def on_transition_complete(
        self, result: TransitionResult, duration_ms: float, context: Mapping[str, Any]
    ) -> None:
        self.calls.append(("complete", result.trigger, duration_ms))

    def on_transition_error(
        self, error: BaseException, state: str, trigger: str, context: Mapping[str, Any]
    ) -> None:
        self.calls.append(("error", state, trigger, type(error).__name__))


def test_observer_fans_out_in_order() -> None:
    observer = TransitionObserver()
    assert not observer.has_hooks
    first, second = Recorder(), Recorder()
    observer.add_hook(first)
    observer.add_hook(second)
    assert observer.has_hooks and observer.hooks == (first, second)
    observer.notify_before_process("e-1", "A", "go", {})
    observer.notify_start("A", "go", {})
    observer.notify_complete(_ok(), 1.5, {})
    observer.notify_error(RuntimeError("x"), "A", "go", {})
    expected = [
        ("before", "A", "go"),
        ("start", "A", "go"),
        ("complete", "go", 1.5),
        ("error", "A", "go", "RuntimeError"),
    ]
    assert first.calls == expected and second.calls == expected


def test_recorder_satisfies_protocol() -> None:
    assert isinstance(Recorder(), TransitionHook)
    assert isinstance(LoggingHook(), TransitionHook)


def test_remove_hook_and_partial_hooks() -> None:
    observer = TransitionObserver()
    rec = Recorder()
    observer.add_hook(rec)
    observer.remove_hook(rec)
    observer.remove_hook(rec)  # absent: no error
    assert not observer.has_hooks
    metrics = MetricsCollector()  # implements only complete/error
    observer.add_hook(metrics)
    observer.notify_before_process(None, "A", "go", {})
    observer.notify_complete(_ok(), 1.0, {})
    assert metrics.get_summary()["total_transitions"] == 1


def test_add_hook_refuses_objects_without_callbacks() -> None:
    with pytest.raises(TypeError, match="implements none"):
        TransitionObserver().add_hook(object())


def test_failing_hook_is_logged_and_does_not_break(caplog: pytest.LogCaptureFixture) -> None:
    class Broken:
        def on_transition_complete(
            self, result: TransitionResult, duration_ms: float, context: Mapping[str, Any]
        ) -> None:
            raise RuntimeError("hook bug")

    observer = TransitionObserver()
    after = Recorder()
    observer.add_hook(Broken())
    observer.add_hook(after)
    with caplog.at_level(logging.ERROR, logger="pystator.hooks"):
        observer.notify_complete(_ok(), 2.0, {})
    assert after.calls == [("complete", "go", 2.0)]
    (record,) = [r for r in caplog.records if r.name == "pystator.hooks"]
    assert record.levelno == logging.ERROR
    assert "Broken.on_transition_complete" in record.getMessage()
    assert record.exc_info is not None and isinstance(record.exc_info[1], RuntimeError)


def test_logging_hook_logs_outcomes(caplog: pytest.LogCaptureFixture) -> None:
    hook = LoggingHook()
    with caplog.at_level(logging.DEBUG, logger="pystator.transitions"):
        hook.on_before_process("e-1", "A", "go", {})
        hook.on_transition_start("A", "go", {})
        hook.on_transition_complete(_ok(), 0.25, {})
        hook.on_transition_complete(_rejected(), 0.25, {})
        hook.on_transition_error(ValueError("boom"), "A", "go", {})
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "go: A -> B" in text
    assert "rejected in A: undefined_trigger" in text
    assert "raised ValueError: boom" in text
    assert caplog.records[-1].levelno == logging.WARNING


def test_metrics_summary_counts_rates_and_durations() -> None:
    metrics = MetricsCollector()
    empty = metrics.get_summary()
    assert empty["total_transitions"] == 0 and empty["success_rate"] == 0.0
    assert empty["duration"] == dict.fromkeys(
        ("min_ms", "max_ms", "avg_ms", "p50_ms", "p95_ms", "p99_ms"), 0.0
    )
    for ms in range(1, 21):
        metrics.on_transition_complete(_ok("fill"), float(ms))
    metrics.on_transition_complete(_rejected("cancel"), 100.0)
    metrics.on_transition_error(RuntimeError("x"), "A", "cancel", {})
    summary = metrics.get_summary()
    assert summary["total_transitions"] == 22
    assert summary["successful"] == 20 and summary["failed"] == 1 and summary["errors"] == 1
    assert summary["success_rate"] == pytest.approx(20 / 22)
    duration = summary["duration"]
    assert duration["min_ms"] == 1.0 and duration["max_ms"] == 100.0
    assert duration["avg_ms"] == pytest.approx((210 + 100) / 21)
    assert duration["p95_ms"] == 20.0  # nearest rank: 20th of 21 samples
    assert duration["p50_ms"] == 11.0 and duration["p99_ms"] == 100.0
    assert summary["by_trigger"] == {"fill": 20, "cancel": 2}
    assert summary["by_source_state"] == {"A": 22}
    assert summary["by_target_state"] == {"B": 20}


def test_metrics_window_is_bounded_and_reset_clears() -> None:
    metrics = MetricsCollector(window=3)
    for ms in (50.0, 1.0, 2.0, 3.0):
        metrics.on_transition_complete(_ok(), ms)
    summary = metrics.get_summary()
    assert summary["total_transitions"] == 4  # counters are not windowed
    assert summary["duration"]["max_ms"] == 3.0  # the 50 ms sample fell out of the window
    metrics.reset()
    assert metrics.get_summary()["total_transitions"] == 0
    with pytest.raises(ValueError):
        MetricsCollector(window=0)
