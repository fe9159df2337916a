"""``pystator.runtime``: :class:`PyStatorRuntime`, the recommended Python surface for apps and
supervisors — database-backed machines, entity state, synchronous transitions and the queue.

``__all__`` is the supported surface: the facade and its session proxy, the queue client,
the value types it answers with, and the functional helpers (:func:`process_event`,
:func:`apply_data`, :func:`queue_apply_data`) for callers that hold a runtime.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pystator.fsm_core.results import TransitionResult
from pystator.registry.catalog import CompatibilityReport, Registered
from pystator.runtime.facade import EntityOperations, MachineSession, PyStatorRuntime
from pystator.runtime.queue import QueueClient
from pystator.runtime.types import (
    EntitySnapshot,
    ObservabilitySummary,
    QueuedEvent,
    TransitionEvent,
    TransitionsPage,
)


def process_event(
    runtime: PyStatorRuntime,
    machine: str,
    entity_id: str,
    trigger: str,
    *,
    version: int | None = None,
    context: Mapping[str, Any] | None = None,
) -> TransitionResult:
    """``runtime.process_event(...)`` as a function."""
    return runtime.process_event(machine, entity_id, trigger, version=version, context=context)


def apply_data(
    runtime: PyStatorRuntime,
    machine: str,
    entity_id: str,
    data: Mapping[str, Any],
    *,
    version: int | None = None,
    context: Mapping[str, Any] | None = None,
) -> list[TransitionResult]:
    """``runtime.apply_data(...)`` as a function."""
    return runtime.apply_data(machine, entity_id, data, version=version, context=context)


def queue_apply_data(
    runtime: PyStatorRuntime,
    machine: str,
    entity_id: str,
    data: Mapping[str, Any],
    **options: Any,
) -> int:
    """``runtime.queue_apply_data(...)`` as a function."""
    return runtime.queue_apply_data(machine, entity_id, data, **options)


__all__ = [
    "CompatibilityReport",
    "EntityOperations",
    "EntitySnapshot",
    "MachineSession",
    "ObservabilitySummary",
    "PyStatorRuntime",
    "QueueClient",
    "QueuedEvent",
    "Registered",
    "TransitionEvent",
    "TransitionsPage",
    "apply_data",
    "process_event",
    "queue_apply_data",
]
