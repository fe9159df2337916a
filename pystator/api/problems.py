"""One error shape for every route: ``application/problem+json`` (RFC 9457).

::

    {"type": "https://pystator.dev/problems/invalid-event", "title": "Invalid event",
     "status": 422, "detail": "trigger: machine 'orders' has no trigger 'shipp'",
     "code": "INVALID_EVENT", "errors": [{"path": "trigger", "rule": "unknown", ...}]}

``errors`` lists every problem when there are several (request validation, machine validation);
other keys of an error's ``details`` (``event_id`` of an idempotency conflict, counts of a refused
retirement) are added at the top level. Tracebacks never leave the server.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from pystator.config.logs import get_logger
from pystator.fsm_core.errors import (
    AuthenticationError,
    ConfigurationError,
    ConflictError,
    EntityNotFoundError,
    FSMError,
    IdempotencyConflictError,
    InvalidEventError,
    MachineValidationError,
    NotFoundError,
    PermissionDeniedError,
    SettingsError,
    StaleVersionError,
    StoreError,
    StoreUnavailableError,
)
from pystator.fsm_core.summary import jsonable

PROBLEM_TYPE_BASE = "https://pystator.dev/problems/"
MEDIA_TYPE = "application/problem+json"

log = get_logger("pystator.api")

#: Renders an error as a page: ``(request, status, detail) -> response`` (the dashboard's).
HtmlErrors = Callable[[Request, int, str], Response]

#: FSM error class -> HTTP status (the first match in this order wins).
STATUS_OF: tuple[tuple[type[FSMError], int], ...] = (
    (AuthenticationError, 401),
    (PermissionDeniedError, 403),
    (NotFoundError, 404),
    (EntityNotFoundError, 404),
    (IdempotencyConflictError, 409),
    (ConflictError, 409),
    (StaleVersionError, 409),
    (StoreUnavailableError, 503),
    (StoreError, 500),
    (SettingsError, 500),
    (InvalidEventError, 422),
    (ConfigurationError, 422),
    (FSMError, 422),
)

_TITLES = {
    400: "Bad request",
    401: "Authentication required",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Request body too large",
    415: "Unsupported media type",
    422: "Invalid request",
    500: "Internal error",
    503: "Service unavailable",
}


def problem(
    status: int,
    detail: str,
    *,
    code: str | None = None,
    errors: Sequence[Mapping[str, Any]] | None = None,
    extra: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """A problem response."""
    slug = (code or _TITLES.get(status, "error")).lower().replace("_", "-").replace(" ", "-")
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + slug,
        "title": _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
    }
    if code is not None:
        body["code"] = code
    if errors:
        body["errors"] = [dict(e) for e in errors]
    for key, value in (extra or {}).items():
        body.setdefault(key, jsonable(value))
    return JSONResponse(
        body, status_code=status, media_type=MEDIA_TYPE, headers=dict(headers or {})
    )


def status_of(exc: FSMError) -> int:
    """The HTTP status an FSM error answers with."""
    return next(status for cls, status in STATUS_OF if isinstance(exc, cls))


def fsm_problem(exc: FSMError) -> JSONResponse:
    """The problem for an FSM error (its message, code, details)."""
    status = status_of(exc)
    errors: list[dict[str, Any]] | None = None
    if isinstance(exc, MachineValidationError):
        errors = [{"path": p.path, "message": p.message} for p in exc.problems]
    elif isinstance(exc, InvalidEventError) and "field" in exc.details:
        errors = [{"path": exc.details["field"], "message": exc.message, **exc.details}]
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    if status >= 500:
        log.error("api_error", status=status, error=type(exc).__name__, message=exc.message)
    return problem(
        status, exc.message, code=exc.code.value, errors=errors, extra=exc.details, headers=headers
    )


def _validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    found = []
    for error in exc.errors():
        location = [str(part) for part in error.get("loc", ())]
        found.append(
            {
                "path": ".".join(location),
                "message": str(error.get("msg", "invalid")),
                "rule": str(error.get("type", "invalid")),
            }
        )
    return found


def _html(request: Request) -> HtmlErrors | None:
    """The page renderer of the area ``request`` is in, if it is one of pages."""
    for prefix, render in request.app.state.html_errors:
        if request.url.path == prefix or request.url.path.startswith(prefix + "/"):
            return render  # type: ignore[no-any-return]
    return None


async def _on_fsm_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, FSMError)
    render = _html(request)
    if render is not None:
        return render(request, status_of(exc), exc.message)
    return fsm_problem(exc)


async def _on_validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = _validation_errors(exc)
    detail = "; ".join(f"{e['path']}: {e['message']}" for e in errors[:5])
    render = _html(request)
    if render is not None:
        return render(request, 422, detail or "invalid request")
    return problem(422, detail or "invalid request", code="VALIDATION_FAILED", errors=errors)


async def _on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    render = _html(request)
    if render is not None:
        return render(request, exc.status_code, str(exc.detail))
    return problem(exc.status_code, str(exc.detail), headers=exc.headers)


async def _on_unexpected(request: Request, exc: Exception) -> Response:
    log.error("api_unhandled_error", error=type(exc).__name__, message=str(exc), exc_info=exc)
    render = _html(request)
    if render is not None:
        return render(request, 500, "internal error (logged on the server)")
    return problem(500, "internal error (logged on the server)")


def install(app: FastAPI, *, html: Sequence[tuple[str, HtmlErrors]] = ()) -> None:
    """Make every error of ``app`` a problem response, but under each ``(prefix, render)`` of
    ``html`` (the dashboard's pages), where ``render`` draws the error as a page."""
    app.state.html_errors = list(html)
    app.add_exception_handler(FSMError, _on_fsm_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(HTTPException, _on_http_error)
    app.add_exception_handler(Exception, _on_unexpected)


__all__ = ["MEDIA_TYPE", "HtmlErrors", "fsm_problem", "install", "problem", "status_of"]
