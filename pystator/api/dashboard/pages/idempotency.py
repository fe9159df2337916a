"""``/ui/idempotency``: look a key up (the event it names, per machine, with its duplicate
count), recent duplicate hits (the same key and content again) and recent conflicts (the same
key with a different event, refused)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from pystator.api.dashboard.pages.common import known_machines
from pystator.api.dashboard.render import page
from pystator.api.dashboard.session import User
from pystator.api.deps import ServicesDep
from pystator.services import lookups

router = APIRouter()

RECENT = 50


@router.get("/idempotency", response_class=HTMLResponse)
def idempotency(request: Request, services: ServicesDep, user: User) -> HTMLResponse:
    """Key lookup, recent duplicates, recent conflicts."""
    key = (request.query_params.get("key") or "").strip()
    machine = (request.query_params.get("machine") or "").strip()
    machines = known_machines(services)
    found = None
    if key:
        found = lookups.events_with_key(services.engine, key, [machine] if machine else machines)
    return page(
        request,
        "idempotency.html",
        {
            "key": key,
            "machine": machine,
            "machines": machines,
            "found": found,
            "key_conflicts": (
                lookups.recent_conflicts(services.engine, limit=RECENT, key=key) if key else []
            ),
            "duplicates": lookups.recent_duplicates(services.engine, limit=RECENT),
            "conflicts": lookups.recent_conflicts(services.engine, limit=RECENT),
        },
        principal=user,
    )


__all__ = ["router"]
