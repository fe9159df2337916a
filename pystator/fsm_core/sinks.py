"""Sinks: where the built-in ``publish`` and ``emit_metric`` actions send what they produce.

The defaults log (``pystator.events`` / ``pystator.metrics`` loggers at INFO); implement
:class:`EventSink` or :class:`MetricSink` and call :func:`configure_event_sink` /
:func:`configure_metric_sink` on an action registry to send them elsewhere (Kafka, StatsD …).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable

from pystator.fsm_core.actions import ActionRegistry

EVENT_LOGGER = logging.getLogger("pystator.events")
METRIC_LOGGER = logging.getLogger("pystator.metrics")
PUBLISH_ACTION = "publish"
EMIT_METRIC_ACTION = "emit_metric"
METRIC_TYPES = ("counter", "gauge", "histogram", "timing")


@runtime_checkable
class EventSink(Protocol):
    """Receives domain events from the ``publish`` action."""

    def send(self, topic: str, payload: dict[str, Any], metadata: dict[str, Any]) -> None:
        """Deliver one event; ``metadata`` holds ``timestamp``, ``state`` and ``trigger``."""


@runtime_checkable
class MetricSink(Protocol):
    """Receives measurements from the ``emit_metric`` action."""

    def emit(self, name: str, value: float, tags: dict[str, str]) -> None:
        """Record one measurement."""


class LoggingEventSink:
    """The default event sink: one INFO line per event on ``pystator.events``."""

    def __init__(self, logger: logging.Logger = EVENT_LOGGER) -> None:
        self.logger = logger

    def send(self, topic: str, payload: dict[str, Any], metadata: dict[str, Any]) -> None:
        """Log the event."""
        self.logger.info("event %s %s %s", topic, payload, metadata)


class LoggingMetricSink:
    """The default metric sink: one INFO line per measurement on ``pystator.metrics``."""

    def __init__(self, logger: logging.Logger = METRIC_LOGGER) -> None:
        self.logger = logger

    def emit(self, name: str, value: float, tags: dict[str, str]) -> None:
        """Log the measurement."""
        self.logger.info("metric %s=%s %s", name, value, tags)


def create_publish_action(sink: EventSink) -> Callable[..., dict[str, Any]]:
    """The ``publish`` action bound to ``sink``: ``{name: publish, params: {topic, include}}``."""

    def publish(
        ctx: Mapping[str, Any], *, topic: str, include: Sequence[str] | None = None
    ) -> dict[str, Any]:
        if not isinstance(topic, str) or not topic:
            raise ValueError("publish needs params.topic (a non-empty string)")
        if include is None:
            payload = {k: v for k, v in ctx.items() if not str(k).startswith("_")}
        else:
            payload = {k: ctx.get(k) for k in include}
        metadata = {
            "timestamp": datetime.now(UTC).isoformat(),
            "state": ctx.get("_state"),
            "trigger": ctx.get("_trigger"),
            "entity_id": ctx.get("_entity_id"),
        }
        sink.send(topic, payload, metadata)
        return payload

    return publish


def create_emit_metric_action(sink: MetricSink) -> Callable[..., float]:
    """The ``emit_metric`` action bound to ``sink``: ``{name, value, type, tags}`` params."""

    def emit_metric(
        ctx: Mapping[str, Any],
        *,
        name: str,
        value: float = 1.0,
        type: str = "counter",
        tags: Mapping[str, Any] | None = None,
    ) -> float:
        if not isinstance(name, str) or not name:
            raise ValueError("emit_metric needs params.name (a non-empty string)")
        if type not in METRIC_TYPES:
            raise ValueError(f"emit_metric type must be one of {', '.join(METRIC_TYPES)}")
        amount = float(value)
        labels = {str(k): str(v) for k, v in (tags or {}).items()}
        labels.setdefault("type", type)
        sink.emit(name, amount, labels)
        return amount

    return emit_metric


def configure_event_sink(actions: ActionRegistry, sink: EventSink) -> None:
    """(Re-)register ``publish`` on ``actions`` so it sends to ``sink``."""
    actions.register(PUBLISH_ACTION, create_publish_action(sink))


def configure_metric_sink(actions: ActionRegistry, sink: MetricSink) -> None:
    """(Re-)register ``emit_metric`` on ``actions`` so it sends to ``sink``."""
    actions.register(EMIT_METRIC_ACTION, create_emit_metric_action(sink))
