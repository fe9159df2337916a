"""``pystator.observability``: hooks, lint and diagrams in one namespace."""

from __future__ import annotations

from pystator.fsm_core.hooks import (
    DwellTimeTracker,
    LoggingHook,
    MetricsCollector,
    StructuredLoggingHook,
    TransitionHook,
    TransitionMetrics,
    TransitionObserver,
)
from pystator.fsm_core.lint import LintSeverity, LintWarning, lint
from pystator.visualization import get_statistics, to_dot, to_mermaid

__all__ = [
    "DwellTimeTracker",
    "LintSeverity",
    "LintWarning",
    "LoggingHook",
    "MetricsCollector",
    "StructuredLoggingHook",
    "TransitionHook",
    "TransitionMetrics",
    "TransitionObserver",
    "get_statistics",
    "lint",
    "to_dot",
    "to_mermaid",
]
