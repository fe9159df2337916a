"""``pystator.behavior``: guards, actions, declarative checks and effects, sinks."""

from __future__ import annotations

from pystator.fsm_core.actions import ActionExecutor, ActionRegistry, ActionResult, ExecutionMode
from pystator.fsm_core.checks import evaluate_check
from pystator.fsm_core.effects import apply_effects
from pystator.fsm_core.guard_helpers import all_of, any_of, equals, greater_than, in_list, negate
from pystator.fsm_core.guards import GuardRegistry, GuardResult
from pystator.fsm_core.sinks import (
    EventSink,
    MetricSink,
    configure_event_sink,
    configure_metric_sink,
)

__all__ = [
    "ActionExecutor",
    "ActionRegistry",
    "ActionResult",
    "EventSink",
    "ExecutionMode",
    "GuardRegistry",
    "GuardResult",
    "MetricSink",
    "all_of",
    "any_of",
    "apply_effects",
    "configure_event_sink",
    "configure_metric_sink",
    "equals",
    "evaluate_check",
    "greater_than",
    "in_list",
    "negate",
]
