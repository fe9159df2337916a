"""``/ui/entities``: search by id prefix; ``/ui/entities/{machine}/{id}``: state, version,
context, the history as a timeline, pending events and armed timers."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from pystator.api.dashboard import forms
from pystator.api.dashboard.pages.common import PAGE_SIZE, known_machines
from pystator.api.dashboard.render import page
from pystator.api.dashboard.session import User
from pystator.api.deps import ServicesDep
from pystator.services import admin, lookups

router = APIRouter()

#: History rows per page of the timeline.
HISTORY_PAGE = 100


@router.get("/entities", response_class=HTMLResponse)
def entities(request: Request, services: ServicesDep, user: User) -> HTMLResponse:
    """Entity search."""
    prefix = (request.query_params.get("q") or "").strip()[: forms.MAX_FIELD_LENGTH]
    machine = (request.query_params.get("machine") or "").strip() or None
    results = (
        lookups.search_entities(services.engine, machine=machine, prefix=prefix, limit=PAGE_SIZE)
        if prefix or machine
        else []
    )
    return page(
        request,
        "entities.html",
        {
            "q": prefix,
            "machine": machine or "",
            "machines": known_machines(services),
            "results": results,
            "searched": bool(prefix or machine),
            "page_size": PAGE_SIZE,
        },
        principal=user,
    )


@router.get("/entities/{machine}/{entity_id:path}", response_class=HTMLResponse)
def entity(
    machine: str, entity_id: str, request: Request, services: ServicesDep, user: User
) -> HTMLResponse:
    """One entity."""
    before = forms.optional_int(request.query_params, "before")
    view = admin.entity_view(
        services.engine, machine, entity_id, history_limit=HISTORY_PAGE, history_before=before
    )
    return page(
        request,
        "entity.html",
        {"view": view, "history": list(reversed(view.history))},
        principal=user,
    )


__all__ = ["router"]
