"""Hooks: lifecycle callbacks around ``process`` (logging, metrics, tracing)."""

from __future__ import annotations

from pystator.fsm_core.hooks import (
    DwellTimeTracker,
    LoggingHook,
    MetricsCollector,
    StructuredLoggingHook,
    TransitionHook,
    TransitionMetrics,
    TransitionObserver,
    entity_scope,
)

__all__ = [
    "DwellTimeTracker",
    "LoggingHook",
    "MetricsCollector",
    "StructuredLoggingHook",
    "TransitionHook",
    "TransitionMetrics",
    "TransitionObserver",
    "entity_scope",
]
