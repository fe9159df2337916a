"""``/ui/webhooks``: the operator webhooks and their delivery log (every attempt's status and
error), with a test delivery per webhook (operators). Creating and changing webhooks is the
API's (admin): ``/api/v1/webhooks``."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from pystator.api.dashboard import forms
from pystator.api.dashboard.pages.common import PAGE_SIZE, write_audit
from pystator.api.dashboard.render import page, redirect
from pystator.api.dashboard.session import Csrf, User, require_role
from pystator.api.deps import ServicesDep
from pystator.services import webhooks
from pystator.services.api_keys import Role

router = APIRouter()


@router.get("/webhooks", response_class=HTMLResponse)
def webhooks_page(request: Request, services: ServicesDep, user: User) -> HTMLResponse:
    """Webhooks and the newest deliveries (of one webhook with ``?webhook=<id>``)."""
    chosen = forms.optional_int(request.query_params, "webhook")
    before = forms.optional_int(request.query_params, "before")
    hooks = webhooks.list_all(services.engine)
    if chosen is not None and chosen not in {h.id for h in hooks}:
        chosen = None
    rows = webhooks.deliveries(
        services.engine, webhook_id=chosen, limit=PAGE_SIZE, before_id=before
    )
    return page(
        request,
        "webhooks.html",
        {
            "hooks": hooks,
            "masked": webhooks.masked,
            "deliveries": rows,
            "chosen": chosen,
            "names": {h.id: h.name for h in hooks},
            "older": rows[-1].id if len(rows) == PAGE_SIZE else None,
            "done": request.query_params.get("done"),
        },
        principal=user,
    )


@router.post("/webhooks/{webhook_id}/test")
def test_webhook(
    webhook_id: int, request: Request, services: ServicesDep, user: User, _csrf: Csrf
) -> Response:
    """Queue a test delivery (operators); the outbox sends it."""
    require_role(user, Role.OPERATOR)
    webhooks.send_test(services.engine, webhook_id, by=user.name)
    write_audit(services, user, request, target=f"webhook:{webhook_id}", affected=1)
    return redirect("/webhooks", webhook=webhook_id, done="queued")


__all__ = ["router"]
