"""``/ui/login`` and ``/ui/logout``: an API key or a JWT, checked by the API's authenticator
and then held in the session cookie."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response

from pystator.api.auth import Arrival
from pystator.api.dashboard import session
from pystator.api.dashboard.render import UI_PREFIX, page, redirect
from pystator.api.dashboard.session import Csrf
from pystator.api.deps import ServicesDep
from pystator.fsm_core.errors import AuthenticationError

router = APIRouter()


def _safe_next(target: str) -> str:
    """Only a path of the dashboard (never another site) is a place to go after login."""
    if target.startswith(UI_PREFIX) and not target.startswith("//") and "\\" not in target:
        return target[len(UI_PREFIX) :] or ""
    return ""


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, services: ServicesDep) -> HTMLResponse:
    """The login form (or a note that this browser needs none)."""
    principal, error = None, None
    try:
        principal = session.principal_of(request, services)
    except AuthenticationError as exc:
        error = session.refusal_note(exc.message)
    return page(
        request,
        "login.html",
        {"next": request.query_params.get("next", UI_PREFIX), "error": error, "current": principal},
        principal=principal,
    )


@router.post("/login")
def login(
    request: Request,
    services: ServicesDep,
    _csrf: Csrf,
    token: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = UI_PREFIX,
) -> Response:
    """Check the credentials; on success hold them in the session cookie and go on."""
    token = token.strip()
    try:
        if not token:
            raise AuthenticationError("paste an API key or a JWT")
        services.auth.authenticate(token, arrival=Arrival.of(request))
    except AuthenticationError as exc:
        return page(
            request,
            "login.html",
            {"next": next, "error": exc.message},
            principal=None,
            status_code=401,
        )
    response = redirect(_safe_next(next))
    session.login(response, token, secure_cookie=session.secure(request, services))
    return response


@router.post("/logout")
def logout(_csrf: Csrf) -> Response:
    """Forget the session."""
    response = redirect("/login")
    session.logout(response)
    return response


__all__ = ["router"]
