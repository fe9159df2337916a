"""``/ui/events``: the API's event filters as a form, keyset pages, a pausable auto-refresh;
``/ui/events/{id}``: every attempt, the outcome, the key and its repeats, the entity's
neighbouring events, and retry / discard buttons."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from pystator.api.dashboard import forms
from pystator.api.dashboard.pages.common import PAGE_SIZE, known_machines, write_audit
from pystator.api.dashboard.render import page, redirect
from pystator.api.dashboard.session import Csrf, User, require_role
from pystator.api.deps import ServicesDep
from pystator.services import admin, lookups
from pystator.services.admin import DISCARDABLE, REPLAYABLE, EventFilter
from pystator.services.api_keys import Role

router = APIRouter()


def events_page_data(request: Request, services: Any) -> dict[str, Any]:
    """The listing: one page of the filter's events, newest first, with its cursors."""
    where, form = forms.event_filter(request.query_params)
    before = forms.optional_int(request.query_params, "before")
    after = forms.optional_int(request.query_params, "after")
    if after is not None:
        rows = list(
            reversed(admin.list_events(services.engine, where, limit=PAGE_SIZE, after_id=after))
        )
    else:
        rows = admin.list_events(services.engine, where, limit=PAGE_SIZE, before_id=before)
    first_page = before is None and (after is None or len(rows) < PAGE_SIZE)
    return {
        "events": rows,
        "form": form,
        "fields": forms.EVENT_FIELDS,
        "statuses": forms.EVENT_STATUSES,
        "origins": forms.ORIGINS,
        "machines": known_machines(services),
        "older": rows[-1].id if rows and (len(rows) == PAGE_SIZE or after is not None) else None,
        "newer": rows[0].id if rows and not first_page else None,
        "live": first_page,
        "filtered": not where.is_empty(),
    }


@router.get("/events", response_class=HTMLResponse)
def events(request: Request, services: ServicesDep, user: User) -> HTMLResponse:
    """The events page."""
    return page(request, "events.html", events_page_data(request, services), principal=user)


@router.get("/events/rows", response_class=HTMLResponse)
def event_rows(request: Request, services: ServicesDep, user: User) -> HTMLResponse:
    """The table alone (what the auto-refresh swaps in)."""
    data = events_page_data(request, services)
    return page(request, "_events_table.html", data, principal=user)


@router.get("/events/{event_id}", response_class=HTMLResponse)
def event_detail(
    event_id: int, request: Request, services: ServicesDep, user: User
) -> HTMLResponse:
    """One event."""
    detail = admin.show_event(services.engine, event_id)
    event = detail.event
    return page(
        request,
        "event.html",
        {
            "event": event,
            "actions": detail.actions,
            "neighbours": lookups.neighbours(services.engine, event),
            "retryable": event.status in REPLAYABLE,
            "discardable": event.status in DISCARDABLE,
            "done": request.query_params.get("done"),
        },
        principal=user,
    )


@router.post("/events/{event_id}/retry")
def retry_event(
    event_id: int, request: Request, services: ServicesDep, user: User, _csrf: Csrf
) -> Response:
    """Send one finished event back to pending (operators)."""
    require_role(user, Role.OPERATOR)
    change = admin.bulk_retry_events(
        services.engine, EventFilter(ids=(event_id,)), services.nudger, limit=1, dry_run=False
    )
    write_audit(services, user, request, target=f"event:{event_id}", affected=change.affected)
    return redirect(f"/events/{event_id}", done="retried" if change.affected else "unchanged")


@router.post("/events/{event_id}/discard")
def discard_event(
    event_id: int, request: Request, services: ServicesDep, user: User, _csrf: Csrf
) -> Response:
    """Discard one pending, dead or rejected event (operators)."""
    require_role(user, Role.OPERATOR)
    change = admin.bulk_discard_events(
        services.engine, EventFilter(ids=(event_id,)), limit=1, dry_run=False
    )
    write_audit(services, user, request, target=f"event:{event_id}", affected=change.affected)
    return redirect(f"/events/{event_id}", done="discarded" if change.affected else "unchanged")


__all__ = ["events_page_data", "router"]
