"""``GET /api/v1/entities/{machine}/{entity_id}`` and the transition feed ``GET
/api/v1/transitions``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from pystator.api.deps import PageLimit, ServicesDep, Viewer
from pystator.api.params import BigInt, Cursor, EntityIdPath, MachinePath
from pystator.api.schemas.common import PROBLEMS
from pystator.api.schemas.events import EventOut
from pystator.api.schemas.fleet import (
    EntityOut,
    HistoryOut,
    TimerOut,
    TransitionOut,
    TransitionPage,
)
from pystator.services import admin

router = APIRouter(prefix="/api/v1", tags=["entities"], responses=PROBLEMS)


@router.get("/entities/{machine}/{entity_id}", response_model=EntityOut)
def show_entity(
    machine: MachinePath,
    entity_id: EntityIdPath,
    services: ServicesDep,
    _viewer: Viewer,
    limit: PageLimit,
    history_cursor: Annotated[
        BigInt | None, Query(description="next_history_cursor of the previous answer")
    ] = None,
) -> EntityOut:
    """State, version, context, the newest ``limit`` history rows (before ``history_cursor``),
    pending events and armed timers."""
    view = admin.entity_view(
        services.engine,
        machine,
        entity_id,
        history_limit=limit,
        history_before=history_cursor,
    )
    record = view.record
    return EntityOut(
        machine=machine,
        entity_id=entity_id,
        state=record.state if record else None,
        version=record.version if record else None,
        context=dict(record.context) if record else None,
        updated_at=record.updated_at if record else None,
        history=[HistoryOut.model_validate(admin.history_dict(h)) for h in view.history],
        next_history_cursor=view.next_history_before,
        pending=[EventOut.model_validate(e) for e in view.pending],
        timers=[TimerOut.model_validate(t) for t in view.timers],
    )


@router.get("/transitions", response_model=TransitionPage)
def transitions(
    services: ServicesDep,
    _viewer: Viewer,
    limit: PageLimit,
    after: Cursor = None,
    machine: str | None = None,
    entity_id: str | None = None,
) -> TransitionPage:
    """Committed transitions in commit order after ``after`` (a consumer saves ``next_cursor``
    and passes it back; it is set even on an empty page)."""
    rows = admin.transitions(
        services.engine, limit=limit, after_id=after, machine=machine, entity_id=entity_id
    )
    return TransitionPage(
        items=[TransitionOut.model_validate({"id": i, **admin.history_dict(h)}) for i, h in rows],
        next_cursor=rows[-1][0] if rows else after,
        limit=limit,
    )
