"""``/ui/dead``: dead letters grouped by machine and error message, each group with its bulk
retry and discard (through the previewed ``/ui/bulk``), plus any filter of the events page."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from pystator.api.dashboard.render import page
from pystator.api.dashboard.session import User
from pystator.api.deps import ServicesDep
from pystator.services import lookups

router = APIRouter()

#: Most groups shown (the largest first).
GROUPS_SHOWN = 100


@router.get("/dead", response_class=HTMLResponse)
def dead_letters(request: Request, services: ServicesDep, user: User) -> HTMLResponse:
    """Dead letters by machine and error."""
    groups = lookups.dead_letter_groups(services.engine, limit=GROUPS_SHOWN)
    return page(
        request,
        "dead.html",
        {"groups": groups, "total": sum(g.count for g in groups), "shown": GROUPS_SHOWN},
        principal=user,
    )


__all__ = ["router"]
