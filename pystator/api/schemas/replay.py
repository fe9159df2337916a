"""Replay testing and shadow mode: request and response bodies."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from pystator.api.params import BIGINT_MAX
from pystator.api.schemas.common import Out, Strict


class AllowIn(Strict):
    """An accepted divergence (``*`` for any state or trigger; no kind: any kind)."""

    state: str = "*"
    trigger: str = "*"
    kind: str | None = None


class ReplayIn(Strict):
    """``POST /api/v1/machines/{name}/replay``: the candidate and which history to replay."""

    candidate: dict[str, Any]
    since: datetime | None = None
    entities: int | None = Field(default=None, ge=1, le=BIGINT_MAX)
    sample: float = Field(default=1.0, gt=0.0, le=1.0)
    allow: list[AllowIn] = Field(default_factory=list)


class ReplayOut(Out):
    """The replay report: totals and the groups per (state, trigger) with examples."""

    machine: str
    ok: bool
    entities: int
    transitions: int
    matched: int
    diverged: int
    allowed: int
    skipped: int
    groups: list[dict[str, Any]]


class ShadowIn(Strict):
    """Attach a candidate as a machine's shadow, evaluated on ``sample_rate`` of its events."""

    candidate: dict[str, Any]
    sample_rate: float = Field(default=1.0, gt=0.0, le=1.0)


class ShadowOut(Out):
    """A machine's shadow: its counts, match rate and difference groups."""

    id: int
    machine: str
    status: str
    sample_rate: float
    matched: int
    mismatched: int
    match_rate: float | None
    created_by: str
    created_at: datetime
    ended_at: datetime | None
    promoted_version: int | None
    candidate_version: str | None
    diffs: list[dict[str, Any]]
