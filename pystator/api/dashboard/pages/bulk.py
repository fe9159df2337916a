"""``/ui/bulk``: retry or discard events or actions by filter, in two steps — a preview that
shows how many rows the filter matches now and how many one confirmation changes (capped at
``PYSTATOR_API_BULK_LIMIT``, the oldest first), then the confirmation, which is audited with
its filter and count."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from pystator.api.app_services import Services
from pystator.api.auth import Principal
from pystator.api.dashboard import forms
from pystator.api.dashboard.pages.common import write_audit
from pystator.api.dashboard.render import page
from pystator.api.dashboard.session import Csrf, User, require_role
from pystator.api.deps import ServicesDep
from pystator.fsm_core.errors import InvalidEventError
from pystator.services import admin
from pystator.services.admin import ActionFilter, EventFilter
from pystator.services.api_keys import Role

router = APIRouter()

KINDS = ("events", "actions")
OPERATIONS = ("retry", "discard")


def _selection(
    raw: Any, services: Services
) -> tuple[str, str, EventFilter | ActionFilter, forms.ParsedForm, int]:
    kind = str(raw.get("kind") or "events")
    operation = str(raw.get("operation") or "retry")
    if kind not in KINDS or operation not in OPERATIONS:
        raise InvalidEventError(f"unknown bulk operation {operation!r} on {kind!r}")
    where: EventFilter | ActionFilter
    if kind == "events":
        where, form = forms.event_filter(raw)
    else:
        where, form = forms.action_filter(raw)
    if form.errors:
        raise InvalidEventError("; ".join(form.errors))
    try:
        ids = forms.ids_of(raw)
    except ValueError:
        raise InvalidEventError("ids: expected comma-separated event ids") from None
    if ids:
        where = replace(where, ids=ids)
        form.values["ids"] = ",".join(map(str, ids))
    if where.is_empty():
        raise InvalidEventError("give at least one filter: a bulk change never means everything")
    cap = services.settings.api_bulk_limit
    limit = min(forms.optional_int(raw, "limit") or cap, cap)
    return kind, operation, where, form, limit


def _run(
    kind: str,
    operation: str,
    where: EventFilter | ActionFilter,
    services: Services,
    *,
    limit: int,
    dry_run: bool,
) -> admin.BulkChange:
    if isinstance(where, EventFilter):
        if operation == "retry":
            return admin.bulk_retry_events(
                services.engine, where, services.nudger, limit=limit, dry_run=dry_run
            )
        return admin.bulk_discard_events(services.engine, where, limit=limit, dry_run=dry_run)
    action = admin.replay_actions if operation == "retry" else admin.discard_actions
    return admin.bulk_actions(services.engine, where, action, limit=limit, dry_run=dry_run)


@router.get("/bulk", response_class=HTMLResponse)
def preview(request: Request, services: ServicesDep, user: User) -> HTMLResponse:
    """How many rows the change would touch (nothing changes yet)."""
    kind, operation, where, form, limit = _selection(request.query_params, services)
    change = _run(kind, operation, where, services, limit=limit, dry_run=True)
    return page(
        request,
        "bulk.html",
        {
            "kind": kind,
            "operation": operation,
            "form": form,
            "change": change,
            "limit": limit,
            "back": request.headers.get("referer"),
        },
        principal=user,
    )


@router.post("/bulk", response_class=HTMLResponse)
async def apply(request: Request, services: ServicesDep, user: User, _csrf: Csrf) -> HTMLResponse:
    """Make the change the preview showed (operators), audited with its filter and count."""
    require_role(user, Role.OPERATOR)
    raw = await request.form()
    kind, operation, where, form, limit = _selection(raw, services)
    change = await run_in_threadpool(
        _apply, request, services, user, kind, operation, where, form, limit
    )
    return page(
        request,
        "bulk_done.html",
        {"kind": kind, "operation": operation, "form": form, "change": change},
        principal=user,
    )


def _apply(
    request: Request,
    services: Services,
    user: Principal,
    kind: str,
    operation: str,
    where: EventFilter | ActionFilter,
    form: forms.ParsedForm,
    limit: int,
) -> admin.BulkChange:
    change = _run(kind, operation, where, services, limit=limit, dry_run=False)
    write_audit(
        services,
        user,
        request,
        target=f"{kind}:{operation}",
        selection={"kind": kind, "operation": operation, "filter": form.query(), "limit": limit},
        affected=change.affected,
    )
    return change


__all__ = ["KINDS", "OPERATIONS", "router"]
