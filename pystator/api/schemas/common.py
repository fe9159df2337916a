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


#: ``responses=`` of routes: the problem shape for every error status.
PROBLEMS: dict[int | str, dict[str, Any]] = {
    status: {"model": Problem, "description": description}
    for status, description in (
        (
            401,
            "no or invalid credentials; while auth is not configured, a request that is not made "
            "directly on this host (it carries proxy headers, or its Host is not a local name): "
            "configure an API key or JWT",
        ),
        (403, "the caller's role does not allow it"),
        (422, "invalid input: every problem with its path"),
    )
}


__all__ = ["PROBLEMS", "Out", "Problem", "Strict"]
