"""What the pages share: the audit row of a dashboard mutation, the machines this process
knows, the page size."""

from __future__ import annotations

from typing import Any

from fastapi import Request

from pystator.api.app_services import Services
from pystator.api.auth import Principal
from pystator.api.dashboard.render import UI_PREFIX
from pystator.api.deps import AuditTrail
from pystator.services.audit import Actor

#: Rows per listing page.
PAGE_SIZE = 50


def write_audit(
    services: Services,
    principal: Principal,
    request: Request,
    *,
    target: str | None = None,
    selection: dict[str, Any] | None = None,
    affected: int | None = None,
) -> None:
    """The audit row of a mutation made from the dashboard (the same table the API writes)."""
    trail = _trail(services, principal, request)
    trail.write(status=200, target=target, selection=selection, affected=affected)


def dashboard_actor(services: Services, principal: Principal, request: Request) -> Actor:
    """Who makes a configuration change from the dashboard (the service records it)."""
    return _trail(services, principal, request).actor


def _trail(services: Services, principal: Principal, request: Request) -> AuditTrail:
    route = str(getattr(request.scope.get("route"), "path", request.url.path))
    if not route.startswith(UI_PREFIX):  # the page routers' own paths lack the mount prefix
        route = UI_PREFIX + route
    return AuditTrail(services=services, principal=principal, method=request.method, route=route)


def known_machines(services: Services) -> list[str]:
    """Names of the machines this process knows (the registry's and the files'), sorted."""
    return sorted(services.machines.names())


__all__ = ["PAGE_SIZE", "dashboard_actor", "known_machines", "write_audit"]
