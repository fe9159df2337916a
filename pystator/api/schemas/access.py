"""Who may do what: the caller, API keys, the audit log."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from pystator.api.params import Text
from pystator.api.schemas.common import Out, Strict

RoleName = Literal["viewer", "operator", "admin"]


class MeOut(Out):
    """The caller."""

    name: str
    role: str
    via: str


class KeyIn(Strict):
    """A key to create."""

    role: RoleName
    name: Text = Field(min_length=1, max_length=200)


class KeyOut(Out):
    """A key (never its secret)."""

    id: int
    name: str
    prefix: str
    role: str
    created_by: str
    created_at: datetime
    revoked_at: datetime | None


class NewKeyOut(KeyOut):
    """A key just created: ``key`` is shown this once."""

    key: str


class AuditOut(Out):
    """One audited mutation."""

    id: int
    at: datetime
    principal: str
    role: str
    method: str
    route: str
    target: str | None
    selection: dict[str, Any] | None
    affected: int | None
    status: int
    kind: str | None = Field(
        default=None,
        description="the configuration change it made (machine.published, api_key.revoked, …); "
        "null for other mutations",
    )


class AuditPage(Out):
    """A page of the audit log, newest first."""

    items: list[AuditOut]
    next_cursor: int | None
    limit: int


__all__ = ["AuditOut", "AuditPage", "KeyIn", "KeyOut", "MeOut", "NewKeyOut", "RoleName"]
