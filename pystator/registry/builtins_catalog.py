"""What a machine definition can name without registering anything: the built-in guards and
actions (the ``http`` action included) and the sinks the fleet ships with — the answer of
``GET /api/v1/catalog/builtins``."""

from __future__ import annotations

from typing import Any

from pystator.plugins.builtins import get_builtin_catalog

#: The sinks shipped: where ``publish`` / ``emit_metric`` send, and what fires ``after:`` timers
#: (``PYSTATOR_SCHEDULER``).
SINKS: tuple[dict[str, str], ...] = (
    {
        "kind": "event",
        "name": "logging",
        "description": "The publish action's default sink: each domain event is a log record.",
    },
    {
        "kind": "metric",
        "name": "logging",
        "description": "The emit_metric action's default sink: each measurement is a log record.",
    },
    {
        "kind": "timer",
        "name": "db",
        "description": "Timers are worker_timers rows; a poller in every worker fires due ones.",
    },
    {
        "kind": "timer",
        "name": "redis",
        "description": "Timer rows also go to a Redis sorted set; pollers claim due ones.",
    },
    {
        "kind": "timer",
        "name": "celery",
        "description": "Timers due soon are published as Celery ETA tasks.",
    },
)


def builtins() -> dict[str, list[dict[str, Any]]]:
    """``{"guards": […], "actions": […], "sinks": […]}``, each entry a name and a one-line
    description (sinks also their ``kind``)."""
    entries = get_builtin_catalog()
    return {
        "guards": [
            {"name": e.name, "description": e.description} for e in entries if e.kind == "guard"
        ],
        "actions": [
            {"name": e.name, "description": e.description} for e in entries if e.kind == "action"
        ],
        "sinks": [dict(s) for s in SINKS],
    }


__all__ = ["SINKS", "builtins"]
