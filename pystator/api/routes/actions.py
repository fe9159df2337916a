"""The action outbox: ``GET /api/v1/actions`` and ``POST /api/v1/actions/retry|discard``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from pystator.api.deps import AuditDep, Operator, PageLimit, ServicesDep, Viewer
from pystator.api.params import Cursor
from pystator.api.schemas.common import PROBLEMS
from pystator.api.schemas.events import BulkOut
from pystator.api.schemas.fleet import (
    ActionFilterIn,
    ActionOut,
    ActionPage,
    ActionQuery,
    ActionSelection,
)
from pystator.services import admin
from pystator.services.admin import ActionFilter

router = APIRouter(prefix="/api/v1/actions", tags=["actions"], responses=PROBLEMS)


@router.get("", response_model=ActionPage)
def list_actions(
    services: ServicesDep,
    _viewer: Viewer,
    limit: PageLimit,
    where: Annotated[ActionQuery, Query()],
    cursor: Cursor = None,
) -> ActionPage:
    """Outbox rows matching the filters, newest first."""
    rows = admin.list_actions(
        services.engine, ActionFilter(**where.model_dump()), limit=limit, before_id=cursor
    )
    return ActionPage(
        items=[ActionOut.model_validate(r) for r in rows],
        next_cursor=rows[-1].id if rows and len(rows) == limit else None,
        limit=limit,
    )


@router.post("/retry", response_model=BulkOut)
def retry(
    body: ActionSelection, services: ServicesDep, _operator: Operator, audit: AuditDep
) -> BulkOut:
    """Send dead or discarded actions back to pending, due now."""
    return _bulk(body, services, audit, admin.replay_actions)


@router.post("/discard", response_model=BulkOut)
def discard(
    body: ActionSelection, services: ServicesDep, _operator: Operator, audit: AuditDep
) -> BulkOut:
    """Give up on pending or dead actions."""
    return _bulk(body, services, audit, admin.discard_actions)


def _bulk(
    body: ActionSelection, services: ServicesDep, audit: AuditDep, operation: admin.ActionOperation
) -> BulkOut:
    where = ActionFilter(ids=tuple(body.ids), **(body.filter or ActionFilterIn()).model_dump())
    cap = services.settings.api_bulk_limit
    limit = cap if body.limit is None else min(body.limit, cap)
    change = admin.bulk_actions(
        services.engine, where, operation, limit=limit, dry_run=body.dry_run
    )
    selection = body.model_dump(mode="json", exclude_none=True) | {"limit": limit}
    audit.write(status=200, selection=selection, affected=change.affected)
    return BulkOut.model_validate(change)
