"""Who is looking at the dashboard, and proof that a form was posted from it.

**Login.** The dashboard accepts the API's credentials: an API key or a JWT, typed into the
login form once and then held in the ``pystator_session`` cookie (HttpOnly, SameSite=Strict,
path ``/ui``, Secure over HTTPS or with ``PYSTATOR_API_SECURE_COOKIES``). Every request checks it
again through the API's :class:`~pystator.api.auth.Authenticator`, so a revoked key or an
expired token logs the browser out within seconds. While auth is not configured, a browser on
this host is the ``local`` admin without logging in, under the API's own rule
(:meth:`~pystator.api.auth.Authenticator.local_refusal`: loopback, no proxy headers, a local
``Host`` — a page whose name was rebound to 127.0.0.1 is refused); anyone else gets the login
form with the reason.

**CSRF.** Every form carries the value of the ``pystator_csrf`` cookie (a random token set on the
first page, HttpOnly, SameSite=Strict) in a hidden ``csrf_token`` field; a POST whose field does
not match its cookie, or whose ``Origin`` / ``Sec-Fetch-Site`` says it came from another site, is
refused with 403 before anything else happens. Another site can neither read the cookie nor
make the browser send it.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Depends, Form, Request
from starlette.responses import Response

from pystator.api.auth import Arrival, Principal
from pystator.api.deps import ServicesDep
from pystator.fsm_core.errors import AuthenticationError, PermissionDeniedError
from pystator.services.api_keys import Role

SESSION_COOKIE = "pystator_session"
CSRF_COOKIE = "pystator_csrf"
CSRF_FIELD = "csrf_token"
#: Where the cookies are sent (the dashboard only; the API reads headers, never cookies).
COOKIE_PATH = "/ui"
#: How long a login lasts in the browser (a JWT's own expiry still applies).
SESSION_SECONDS = 8 * 3600


class LoginRequired(AuthenticationError):
    """No valid session: the page answers with the login form."""


def principal_of(request: Request, services: ServicesDep) -> Principal:
    """The principal of this browser (the session cookie's credentials, or ``local`` on an
    unsecured server reached from this host); :class:`LoginRequired` otherwise."""
    token = request.cookies.get(SESSION_COOKIE) or None
    try:
        return services.auth.authenticate(token, arrival=Arrival.of(request))
    except AuthenticationError as exc:
        raise LoginRequired(exc.message) from exc


def refusal_note(detail: str) -> str | None:
    """What the login form says about a refusal: why this browser is not the local admin (a
    proxy, a foreign Host), or nothing when credentials are simply missing."""
    return None if detail.startswith("credentials required") else detail


async def current_user(request: Request, services: ServicesDep) -> Principal:
    """The dependency every page takes: who is looking (runs on the event loop)."""
    return principal_of(request, services)


User = Annotated[Principal, Depends(current_user)]


def csrf_token(request: Request) -> str:
    """This browser's CSRF token (a fresh one when it has none yet; :func:`issue` sets it)."""
    token = request.cookies.get(CSRF_COOKIE)
    if not token:
        token = getattr(request.state, "new_csrf", None) or secrets.token_urlsafe(32)
        request.state.new_csrf = token
    return token


def secure(request: Request, services: ServicesDep) -> bool:
    """Whether cookies get the Secure flag."""
    return request.url.scheme == "https" or services.settings.api_secure_cookies


def issue(request: Request, response: Response, services: ServicesDep) -> None:
    """Set the CSRF cookie on ``response`` when this request minted the token."""
    token = getattr(request.state, "new_csrf", None)
    if token:
        response.set_cookie(
            CSRF_COOKIE,
            token,
            httponly=True,
            samesite="strict",
            secure=secure(request, services),
            path=COOKIE_PATH,
        )


def check_origin(request: Request) -> None:
    """Refuse a request a browser says came from another site."""
    site = request.headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        raise PermissionDeniedError(f"refused: a form posted from another site ({site})")
    origin = request.headers.get("origin")
    if origin and origin != "null":
        parts = urlsplit(origin)
        if (parts.scheme, parts.netloc) != (request.url.scheme, request.url.netloc):
            raise PermissionDeniedError(f"refused: a form posted from {origin}")


async def verify_csrf(
    request: Request, csrf_token: Annotated[str, Form(alias=CSRF_FIELD)] = ""
) -> None:
    """The dependency of every POST: the form's token matches the cookie, from this site."""
    check_origin(request)
    cookie = request.cookies.get(CSRF_COOKIE, "")
    if not cookie or not csrf_token or not hmac.compare_digest(cookie, csrf_token):
        raise PermissionDeniedError(
            "refused: the form's CSRF token is missing or stale (reload the page and retry)"
        )


Csrf = Annotated[None, Depends(verify_csrf)]


def require_role(principal: Principal, role: Role) -> None:
    """Refuse (403) unless ``principal`` may act as ``role``, whatever the page showed."""
    if not principal.role.allows(role):
        raise PermissionDeniedError(
            f"this needs the {role.value} role; {principal.name} is {principal.role.value}"
        )


def login(response: Response, token: str, *, secure_cookie: bool) -> None:
    """Hold ``token`` (already checked) in the session cookie."""
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=SESSION_SECONDS,
        httponly=True,
        samesite="strict",
        secure=secure_cookie,
        path=COOKIE_PATH,
    )


def logout(response: Response) -> None:
    """Forget the session cookie."""
    response.delete_cookie(SESSION_COOKIE, path=COOKIE_PATH)


__all__ = [
    "COOKIE_PATH",
    "CSRF_COOKIE",
    "CSRF_FIELD",
    "SESSION_COOKIE",
    "Csrf",
    "LoginRequired",
    "User",
    "check_origin",
    "csrf_token",
    "current_user",
    "issue",
    "login",
    "logout",
    "principal_of",
    "refusal_note",
    "require_role",
    "secure",
    "verify_csrf",
]
