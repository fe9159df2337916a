"""The machine page's shadow buttons: ``POST /ui/machines/{name}/shadow/promote`` and
``…/stop`` (operators and admins, behind CSRF, audited like the API's routes)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from pystator.api.dashboard.pages.common import dashboard_actor, write_audit
from pystator.api.dashboard.render import redirect
from pystator.api.dashboard.session import Csrf, User, require_role
from pystator.api.deps import ServicesDep
from pystator.services import shadow
from pystator.services.api_keys import Role

router = APIRouter()


@router.post("/machines/{name}/shadow/promote")
def promote(
    name: str, request: Request, services: ServicesDep, user: User, _csrf: Csrf
) -> Response:
    """Publish the shadow's candidate as the machine's next version (audited by the publish)."""
    require_role(user, Role.OPERATOR)
    shadow.promote_shadow(services.engine, name, by=dashboard_actor(services, user, request))
    stored = services.machines.stored
    if stored is not None:
        stored.refresh()
    return redirect(f"/machines/{name}", done="promoted")


@router.post("/machines/{name}/shadow/stop")
def stop(name: str, request: Request, services: ServicesDep, user: User, _csrf: Csrf) -> Response:
    """End the machine's shadow (its comparison is kept)."""
    require_role(user, Role.OPERATOR)
    view = shadow.stop_shadow(services.engine, name)
    write_audit(services, user, request, target=f"{name}#shadow{view.shadow.id}", affected=1)
    return redirect(f"/machines/{name}", done="stopped")


__all__ = ["router"]
