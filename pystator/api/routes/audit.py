"""``GET /api/v1/audit``: the mutations made through the API and the dashboard, and the
configuration changes made through any door (the command line and Python too; ``kind`` names
them) — operators and admins: who changed what is theirs to see."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter

from pystator.api.deps import Operator, PageLimit, ServicesDep
from pystator.api.params import Cursor
from pystator.api.schemas.access import AuditOut, AuditPage
from pystator.api.schemas.common import PROBLEMS
from pystator.services import audit
from pystator.services.audit import AuditFilter

router = APIRouter(prefix="/api/v1", tags=["audit"], responses=PROBLEMS)


@router.get("/audit", response_model=AuditPage)
def list_audit(
    services: ServicesDep,
    _operator: Operator,
    limit: PageLimit,
    principal: str | None = None,
    route: str | None = None,
    since: datetime | None = None,
    cursor: Cursor = None,
) -> AuditPage:
    """Audit rows, newest first."""
    where = AuditFilter(principal=principal, route=route, since=since)
    rows = audit.list_entries(services.engine, where, limit=limit, before_id=cursor)
    return AuditPage(
        items=[AuditOut.model_validate(r) for r in rows],
        next_cursor=rows[-1].id if rows and len(rows) == limit else None,
        limit=limit,
    )
