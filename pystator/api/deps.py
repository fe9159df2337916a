"""The cross-cutting parts every route declares as dependencies: the process's services, the
caller (:func:`current_principal`), the role check (``require("operator")``), the audit trail
of a mutation and the page size.

The role a route needs is visible on its dependency (:class:`RoleCheck` has ``role``), so a test
can walk the app's route table and check every route against every role. These dependencies are
``async``: they do no I/O of their own (but a cached key check), and FastAPI would otherwise run
each in a worker thread.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Query, Request

from pystator.api.app_services import Services
from pystator.api.auth import Arrival, Principal
from pystator.api.params import BIGINT_MAX
from pystator.config.logs import get_logger
from pystator.fsm_core.clock import utc_now
from pystator.fsm_core.errors import PermissionDeniedError
from pystator.services import audit
from pystator.services.api_keys import Role
from pystator.services.audit import Actor, AuditEntry

log = get_logger("pystator.api")

#: Default page size of listings (the largest is ``PYSTATOR_API_PAGE_LIMIT``).
DEFAULT_PAGE = 50


async def get_services(request: Request) -> Services:
    """The process's :class:`Services` (built when the app started)."""
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


def credentials(request: Request) -> str | None:
    """The token of ``Authorization: Bearer …`` or ``X-API-Key``, if any."""
    header = request.headers.get("authorization")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
    key = request.headers.get("x-api-key")
    return key.strip() if key and key.strip() else None


async def current_principal(request: Request, services: ServicesDep) -> Principal:
    """Who is calling (401 when credentials are missing where needed, or invalid).

    Runs on the event loop (no thread hop): a check is a cache hit but for one database
    lookup per key every few seconds."""
    return services.auth.authenticate(credentials(request), arrival=Arrival.of(request))


class RoleCheck:
    """The dependency ``require(role)`` returns: the caller, if their role allows ``role``."""

    def __init__(self, role: Role) -> None:
        self.role = role

    def __call__(self, principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
        if not principal.role.allows(self.role):
            raise PermissionDeniedError(
                f"this needs the {self.role.value} role; {principal.name} is "
                f"{principal.role.value}",
                details={"needed": self.role.value, "role": principal.role.value},
            )
        return principal

    def __repr__(self) -> str:
        return f"require({self.role.value!r})"


def require(role: str | Role) -> RoleCheck:
    """The dependency of a route that needs ``role`` (viewer < operator < admin)."""
    return RoleCheck(Role(role))


Viewer = Annotated[Principal, Depends(require(Role.VIEWER))]
Operator = Annotated[Principal, Depends(require(Role.OPERATOR))]
Admin = Annotated[Principal, Depends(require(Role.ADMIN))]


@dataclass
class AuditTrail:
    """Writes the audit row of one mutation (a route calls :meth:`write` once it is done).

    A configuration change (publish, retire, API keys, webhooks) is recorded by the service that
    makes it, in its transaction: its route passes :attr:`actor` to the service instead of
    calling :meth:`write`, so the request has one row."""

    services: Services
    principal: Principal
    method: str
    route: str
    written: list[int] = field(default_factory=list)

    @property
    def actor(self) -> Actor:
        """This request's caller and route, for a service that records the change itself."""
        return Actor(
            principal=self.principal.name,
            role=self.principal.role.value,
            method=self.method,
            route=self.route,
        )

    def write(
        self,
        *,
        status: int,
        target: str | None = None,
        selection: dict[str, Any] | None = None,
        affected: int | None = None,
        queued: bool = False,
    ) -> None:
        """Append the row (who, when, route, what was selected, how many were affected);
        ``queued`` rows (event submissions) are written within 0.2 s by the process's
        :class:`~pystator.services.audit.AuditWriter`, the others before this returns."""
        entry = AuditEntry(
            at=utc_now(),
            principal=self.principal.name,
            role=self.principal.role.value,
            method=self.method,
            route=self.route,
            status=status,
            target=target,
            selection=selection,
            affected=affected,
        )
        if queued:
            self.services.audit.add(entry)
        else:
            self.written.append(audit.record(self.services.engine, entry))


async def audit_trail(
    request: Request,
    services: ServicesDep,
    principal: Annotated[Principal, Depends(current_principal)],
) -> AuditTrail:
    """The audit trail of this request (its route's path template, its caller)."""
    route = request.scope.get("route")
    path = getattr(route, "path", request.url.path)
    return AuditTrail(
        services=services, principal=principal, method=request.method, route=str(path)
    )


AuditDep = Annotated[AuditTrail, Depends(audit_trail)]


async def page_limit(
    services: ServicesDep,
    limit: Annotated[
        int, Query(ge=1, le=BIGINT_MAX, description="page size (capped by the server)")
    ] = (DEFAULT_PAGE),
) -> int:
    """The page size asked for, capped at ``PYSTATOR_API_PAGE_LIMIT``."""
    return min(limit, services.settings.api_page_limit)


PageLimit = Annotated[int, Depends(page_limit)]


__all__ = [
    "Admin",
    "AuditDep",
    "AuditTrail",
    "Operator",
    "PageLimit",
    "RoleCheck",
    "ServicesDep",
    "Viewer",
    "audit_trail",
    "credentials",
    "current_principal",
    "get_services",
    "require",
]
