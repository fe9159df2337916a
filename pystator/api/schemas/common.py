"""Shared pieces of the request and response models."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class Strict(BaseModel):
    """A request body: unknown fields are refused (422)."""

    model_config = ConfigDict(extra="forbid")


class Out(BaseModel):
    """A response body, readable from the operations' dataclasses."""

    model_config = ConfigDict(from_attributes=True)


class Problem(BaseModel):
    """The error shape of every route (``application/problem+json``)."""

    type: str
    title: str
    status: int
    detail: str
    code: str | None = None
    errors: list[dict[str, Any]] | None = None


#: What each problem status means, as the OpenAPI describes it on every route that can answer it
#: (``pystator.api.openapi`` declares them; a route only declares what it answers otherwise).
PROBLEM_DESCRIPTIONS: dict[int, str] = {
    400: "the body is not valid JSON (or YAML, where a definition is accepted)",
    401: (
        "no or invalid credentials; while auth is not configured, a request that is not made "
        "directly on this host (it carries proxy headers, or its Host is not a local name): "
        "configure an API key or JWT"
    ),
    403: "the caller's role does not allow it",
    404: "something the request names does not exist",
    409: "a conflict with the stored state (it exists, it changed, it is still in use)",
    413: "the body is larger than PYSTATOR_API_MAX_BODY_BYTES",
    415: "the body's media type is not accepted here",
    422: "invalid input (body, query string or path): every problem with its path",
    503: "the database or the broker is unavailable: retry later",
}

#: ``responses=`` of routes: the problem shape for the statuses of every authenticated route.
PROBLEMS: dict[int | str, dict[str, Any]] = {
    status: {"model": Problem, "description": PROBLEM_DESCRIPTIONS[status]}
    for status in (401, 403, 422)
}


__all__ = ["PROBLEMS", "PROBLEM_DESCRIPTIONS", "Out", "Problem", "Strict"]
