"""Actions: the registry of named side effects and the executor that runs a transition's plan."""

from __future__ import annotations

from pystator.fsm_core.actions import (
    ActionExecutor,
    ActionOutcome,
    ActionRegistry,
    ActionResult,
    CallStyle,
    ExecutionMode,
    ExecutionReport,
    ExecutionResult,
    RegisteredAction,
    RetryPolicy,
)

__all__ = [
    "ActionExecutor",
    "ActionOutcome",
    "ActionRegistry",
    "ActionResult",
    "CallStyle",
    "ExecutionMode",
    "ExecutionReport",
    "ExecutionResult",
    "RegisteredAction",
    "RetryPolicy",
]
