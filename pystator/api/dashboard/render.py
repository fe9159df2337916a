"""Pages from templates: the Jinja2 environment, its filters, the security headers of every
page, and errors drawn as pages (a missing login becomes the login form)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

from pystator.api.auth import Principal
from pystator.api.dashboard import session
from pystator.fsm_core.clock import utc_now
from pystator.services.api_keys import Role

HERE = Path(__file__).parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"
UI_PREFIX = "/ui"

#: Scripts and styles come from this server only; no inline script runs (the page data charts
#: read sits in ``application/json`` blocks, which browsers never execute). Styles may be inline:
#: uPlot and Mermaid size their drawings with style attributes.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; "
    "form-action 'self'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}

#: The navigation bar: (path under /ui, label).
NAVIGATION = (
    ("", "Overview"),
    ("/events", "Events"),
    ("/dead", "Dead letters"),
    ("/idempotency", "Idempotency"),
    ("/entities", "Entities"),
    ("/machines", "Machines"),
    ("/actions", "Actions"),
    ("/audit", "Audit log"),
    ("/webhooks", "Webhooks"),
)


def ago(value: datetime | None, now: datetime | None = None) -> str:
    """``12 s ago``, ``3 min ago``, ``in 5 s`` … (empty for None)."""
    if value is None:
        return ""
    seconds = ((now or utc_now()) - value).total_seconds()
    future = seconds < 0
    seconds = abs(seconds)
    if seconds < 60:
        text = f"{seconds:.0f} s"
    elif seconds < 3600:
        text = f"{seconds / 60:.0f} min"
    elif seconds < 86400:
        text = f"{seconds / 3600:.1f} h"
    else:
        text = f"{seconds / 86400:.1f} d"
    return f"in {text}" if future else f"{text} ago"


def timestamp(value: datetime | None) -> str:
    """UTC, to the millisecond (empty for None)."""
    return "" if value is None else value.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + "Z"


def pretty_json(value: Any) -> str:
    """Indented JSON for ``<pre>`` blocks."""
    return json.dumps(value, indent=2, sort_keys=True, default=str)


def number(value: int | float | None) -> str:
    """Thousands separated."""
    if value is None:
        return ""
    return f"{value:,.0f}" if isinstance(value, int) or float(value).is_integer() else f"{value:,}"


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(ago=ago, ts=timestamp, pretty=pretty_json, num=number)
    env.globals.update(navigation=NAVIGATION, prefix=UI_PREFIX, Role=Role)
    return env


ENVIRONMENT = _environment()


def url(path: str, **query: Any) -> str:
    """``/ui<path>?query`` (empty and None values left out)."""
    kept = {k: v for k, v in query.items() if v not in (None, "")}
    return UI_PREFIX + path + ("?" + urlencode(kept) if kept else "")


ENVIRONMENT.globals["url"] = url


def page(
    request: Request,
    template: str,
    context: Mapping[str, Any],
    *,
    principal: Principal | None,
    status_code: int = 200,
) -> HTMLResponse:
    """Render ``template`` with ``context`` plus the caller, the CSRF token and the current
    path; sets the security headers and, on a browser's first page, its CSRF cookie."""
    services = request.app.state.services
    values = {
        "request": request,
        "principal": principal,
        "can_operate": principal is not None and principal.role.allows(Role.OPERATOR),
        "is_admin": principal is not None and principal.role.allows(Role.ADMIN),
        "csrf": session.csrf_token(request),
        "path": request.url.path,
        "now": utc_now(),
        **context,
    }
    html = ENVIRONMENT.get_template(template).render(values)
    response = HTMLResponse(html, status_code=status_code, headers=SECURITY_HEADERS)
    session.issue(request, response, services)
    return response


def redirect(path: str, **query: Any) -> RedirectResponse:
    """303 to a dashboard page (after a POST)."""
    return RedirectResponse(url(path, **query), status_code=303, headers=SECURITY_HEADERS)


def error_page(request: Request, status: int, detail: str) -> Response:
    """An error as a page; 401 (no valid session) shows the login form instead."""
    if status == 401:
        target = request.url.path
        if request.method == "GET" and request.url.query:
            target += "?" + request.url.query
        return page(
            request,
            "login.html",
            {"next": target, "error": session.refusal_note(detail)},
            principal=None,
            status_code=401,
        )
    principal: Principal | None = None
    try:
        principal = session.principal_of(request, request.app.state.services)
    except Exception:  # the error page of a broken session still renders
        principal = None
    return page(
        request,
        "error.html",
        {"status": status, "detail": detail},
        principal=principal,
        status_code=status,
    )


__all__ = [
    "CONTENT_SECURITY_POLICY",
    "ENVIRONMENT",
    "NAVIGATION",
    "SECURITY_HEADERS",
    "STATIC",
    "UI_PREFIX",
    "ago",
    "error_page",
    "number",
    "page",
    "pretty_json",
    "redirect",
    "timestamp",
    "url",
]
