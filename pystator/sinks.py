"""Sinks for the built-in ``publish`` and ``emit_metric`` actions."""

from __future__ import annotations

from pystator.fsm_core.sinks import (
    EventSink,
    LoggingEventSink,
    LoggingMetricSink,
    MetricSink,
    configure_event_sink,
    configure_metric_sink,
    create_emit_metric_action,
    create_publish_action,
)

__all__ = [
    "EventSink",
    "LoggingEventSink",
    "LoggingMetricSink",
    "MetricSink",
    "configure_event_sink",
    "configure_metric_sink",
    "create_emit_metric_action",
    "create_publish_action",
]
