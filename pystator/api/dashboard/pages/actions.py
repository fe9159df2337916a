"""``/ui/actions``: outbox rows (pending, dead, done, discarded) with retry and discard by
selection or filter (through the previewed ``/ui/bulk``)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from pystator.api.dashboard import forms
from pystator.api.dashboard.pages.common import PAGE_SIZE, known_machines
from pystator.api.dashboard.render import page
from pystator.api.dashboard.session import User
from pystator.api.deps import ServicesDep
from pystator.services import admin

router = APIRouter()


@router.get("/actions", response_class=HTMLResponse)
def actions(request: Request, services: ServicesDep, user: User) -> HTMLResponse:
    """The outbox."""
    where, form = forms.action_filter(request.query_params)
    before = forms.optional_int(request.query_params, "before")
    rows = admin.list_actions(services.engine, where, limit=PAGE_SIZE, before_id=before)
    return page(
        request,
        "actions.html",
        {
            "rows": rows,
            "form": form,
            "statuses": forms.ACTION_STATUSES,
            "machines": known_machines(services),
            "older": rows[-1].id if len(rows) == PAGE_SIZE else None,
            "filtered": not where.is_empty(),
        },
        principal=user,
    )


__all__ = ["router"]
