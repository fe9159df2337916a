"""``/ui/audit``: who changed what, when, with which filter and how many rows (the API's and
the dashboard's mutations, and configuration changes from every door, the command line and
Python too; operators and admins, as in the API)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from pystator.api.dashboard import forms
from pystator.api.dashboard.pages.common import PAGE_SIZE
from pystator.api.dashboard.render import page
from pystator.api.dashboard.session import User, require_role
from pystator.api.deps import ServicesDep
from pystator.services import audit
from pystator.services.api_keys import Role
from pystator.services.audit import AuditFilter

router = APIRouter()


@router.get("/audit", response_class=HTMLResponse)
def audit_log(request: Request, services: ServicesDep, user: User) -> HTMLResponse:
    """The audit log, newest first."""
    require_role(user, Role.OPERATOR)
    principal = (request.query_params.get("principal") or "").strip() or None
    route = (request.query_params.get("route") or "").strip() or None
    before = forms.optional_int(request.query_params, "before")
    rows = audit.list_entries(
        services.engine,
        AuditFilter(principal=principal, route=route),
        limit=PAGE_SIZE,
        before_id=before,
    )
    return page(
        request,
        "audit.html",
        {
            "rows": rows,
            "principal_filter": principal or "",
            "route_filter": route or "",
            "older": rows[-1].id if len(rows) == PAGE_SIZE else None,
        },
        principal=user,
    )


__all__ = ["router"]
