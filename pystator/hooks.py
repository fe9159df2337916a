"""Hooks: lifecycle callbacks around ``process`` (logging, metrics, tracing)."""

from __future__ import annotations

from pystator.fsm_core.hooks import (
    LoggingHook,
    MetricsCollector,
    TransitionHook,
    TransitionObserver,
)

__all__ = ["LoggingHook", "MetricsCollector", "TransitionHook", "TransitionObserver"]
