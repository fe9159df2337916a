"""Fleet observability feeds over the tables (read only, viewer):
``GET /api/v1/observability/summary``, ``/transitions`` (newest first), ``/worker-events`` and
``/state-metrics``. Time windows are measured on the database's clock."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query

from pystator.api.deps import PageLimit, ServicesDep, Viewer
from pystator.api.params import Cursor, NameFilter
from pystator.api.schemas.common import PROBLEMS
from pystator.api.schemas.entity_ops import (
    ObservedTransitionPage,
    StateMetricsOut,
    SummaryOut,
)
from pystator.api.schemas.events import EventOut, EventPage, EventQuery
from pystator.api.schemas.fleet import TransitionOut
from pystator.fleet import door
from pystator.services import admin, observability
from pystator.services.admin import EventFilter

router = APIRouter(prefix="/api/v1/observability", tags=["observability"], responses=PROBLEMS)

#: The longest window a feed aggregates over (31 days).
MAX_WINDOW_SECONDS = 31 * 24 * 3600

WindowSeconds = Annotated[
    int,
    Query(ge=1, le=MAX_WINDOW_SECONDS, description="the window, in seconds (default one hour)"),
]


@router.get("/summary", response_model=SummaryOut)
def summary(
    services: ServicesDep, _viewer: Viewer, window_seconds: WindowSeconds = 3600
) -> dict[str, Any]:
    """Entities (all, by machine), transitions and events within the window, events by
    status, the outbox and the backlog."""
    return observability.summary(services.engine, window=timedelta(seconds=window_seconds))


@router.get("/transitions", response_model=ObservedTransitionPage)
def transitions(
    services: ServicesDep,
    _viewer: Viewer,
    limit: PageLimit,
    before: Cursor = None,
    machine: NameFilter = None,
    entity_id: NameFilter = None,
    trigger: NameFilter = None,
) -> ObservedTransitionPage:
    """Committed transitions, newest first (``GET /api/v1/transitions`` is the consumer feed,
    oldest first)."""
    rows = observability.recent_transitions(
        services.engine,
        limit=limit,
        before_id=before,
        machine=_filter("machine", machine),
        entity_id=_filter("entity_id", entity_id),
        trigger=_filter("trigger", trigger),
    )
    return ObservedTransitionPage(
        items=[TransitionOut.model_validate({"id": i, **admin.history_dict(h)}) for i, h in rows],
        next_cursor=rows[-1][0] if rows and len(rows) == limit else None,
        limit=limit,
    )


@router.get("/worker-events", response_model=EventPage)
def worker_events(
    services: ServicesDep,
    _viewer: Viewer,
    limit: PageLimit,
    where: Annotated[EventQuery, Query()],
    cursor: Cursor = None,
) -> EventPage:
    """The ``worker_events`` rows matching the filters, newest first."""
    rows = admin.list_events(
        services.engine, EventFilter(**where.model_dump()), limit=limit, before_id=cursor
    )
    return EventPage(
        items=[EventOut.model_validate(r) for r in rows],
        next_cursor=rows[-1].id if rows and len(rows) == limit else None,
        limit=limit,
    )


@router.get("/state-metrics", response_model=StateMetricsOut)
def state_metrics(
    services: ServicesDep,
    _viewer: Viewer,
    machine: NameFilter = None,
    window_seconds: WindowSeconds = 3600,
) -> dict[str, Any]:
    """Entities per state now, entries into each state and transitions per edge within the
    window."""
    return observability.state_metrics(
        services.engine,
        machine=_filter("machine", machine),
        window=timedelta(seconds=window_seconds),
    )


def _filter(field: str, value: str | None) -> str | None:
    """A filter value through the door (a NUL byte is a 422, never a database error)."""
    return door.check_name(field, value, limit=door.Limits().max_entity_id_length, required=False)


__all__ = ["router"]
