"""``/ui``: the fleet at a glance — counts by status and machine, the backlog and its oldest
due event, events per minute over the last hours (from the rollups, so a restart loses
nothing), workers and their last progress."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from pystator.api.dashboard.render import page
from pystator.api.dashboard.session import User
from pystator.api.deps import ServicesDep
from pystator.fsm_core.clock import utc_now
from pystator.services import admin, lookups

router = APIRouter()

#: The chart windows offered, in hours.
WINDOWS = (1, 3, 6, 24)
DEFAULT_WINDOW = 3
#: Outcomes charted, in drawing order.
CHARTED = ("applied", "retried", "dead", "rejected")


def overview_data(services: Any, hours: int) -> dict[str, Any]:
    """Everything the overview shows (also what its live refresh re-renders)."""
    settings = services.settings
    gauges = admin.gauges(services.engine, heartbeat_seconds=settings.heartbeat_seconds)
    rates = lookups.event_rates(services.engine, minutes=hours * 60)
    machines = sorted(
        {m for m, _ in gauges.backlog} | set(gauges.dead_events) | {m for m, _ in rates.totals}
    )
    rows = []
    for machine in machines:
        rows.append(
            {
                "machine": machine,
                "due": gauges.backlog.get((machine, "due"), 0),
                "future": gauges.backlog.get((machine, "future"), 0),
                "dead_now": gauges.dead_events.get(machine, 0),
                **{o: rates.totals.get((machine, o), 0) for o in (*CHARTED, "stale")},
            }
        )
    now = utc_now()
    workers = [w for w in admin.list_workers(services.engine) if w.get("kind") != "child"]
    chart = {
        "t": [int(m.timestamp()) for m in rates.minutes],
        **{o: rates.series[o] for o in CHARTED},
    }
    return {
        "gauges": gauges,
        "due_total": sum(n for (_, due), n in gauges.backlog.items() if due == "due"),
        "future_total": sum(n for (_, due), n in gauges.backlog.items() if due == "future"),
        "dead_total": sum(gauges.dead_events.values()),
        "rows": rows,
        "hours": hours,
        "windows": WINDOWS,
        "chart_json": json.dumps(chart),
        "window_totals": {o: sum(rates.series[o]) for o in (*CHARTED, "stale")},
        "workers": workers[:50],
        "alive_after": now.timestamp() - 3 * settings.heartbeat_seconds,
    }


def _hours(request: Request) -> int:
    try:
        hours = int(request.query_params.get("hours", DEFAULT_WINDOW))
    except ValueError:
        return DEFAULT_WINDOW
    return hours if hours in WINDOWS else DEFAULT_WINDOW


@router.get("", response_class=HTMLResponse, name="ui_overview")
def overview(request: Request, services: ServicesDep, user: User) -> HTMLResponse:
    """The overview page."""
    return page(request, "overview.html", overview_data(services, _hours(request)), principal=user)


@router.get("/overview/live", response_class=HTMLResponse)
def overview_live(request: Request, services: ServicesDep, user: User) -> HTMLResponse:
    """The overview's numbers alone (its auto-refresh swaps them in)."""
    data = overview_data(services, _hours(request))
    return page(request, "_overview_live.html", data, principal=user)


__all__ = ["overview_data", "router"]
