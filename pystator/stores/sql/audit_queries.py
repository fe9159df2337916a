"""Every query on ``audit_log``: one row per mutation through the HTTP API."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, RowMapping

from pystator.fsm_core.clock import as_utc
from pystator.stores.sql import feed_queries
from pystator.stores.sql.feed_queries import FeedPosition
from pystator.stores.sql.schema import audit_log

_A = audit_log.c


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditEntry:
    """What one mutation did, and who asked for it."""

    at: datetime
    principal: str
    role: str
    method: str
    route: str
    status: int
    target: str | None = None
    selection: Mapping[str, Any] | None = None
    affected: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditRecord(AuditEntry):
    """An ``audit_log`` row as read back."""

    id: int


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditFilter:
    """Which audit rows to list (combined with AND)."""

    principal: str | None = None
    route: str | None = None
    since: datetime | None = None

    def where(self) -> list[sa.ColumnElement[bool]]:
        """The SQL conditions of this filter."""
        conditions: list[sa.ColumnElement[bool]] = []
        if self.principal is not None:
            conditions.append(_A.principal == self.principal)
        if self.route is not None:
            conditions.append(_A.route == self.route)
        if self.since is not None:
            conditions.append(_A.at >= self.since)
        return conditions


def insert_entry(conn: Connection, entry: AuditEntry) -> int:
    """Append one row; returns its id."""
    return int(
        conn.execute(sa.insert(audit_log).values(**_values(entry)).returning(_A.id)).scalar_one()
    )


def insert_entries(conn: Connection, entries: Sequence[AuditEntry]) -> None:
    """Append rows (one executemany)."""
    if entries:
        conn.execute(sa.insert(audit_log), [_values(e) for e in entries])


def _values(entry: AuditEntry) -> dict[str, Any]:
    return {
        "at": entry.at,
        "principal": entry.principal,
        "role": entry.role,
        "method": entry.method,
        "route": entry.route,
        "status": entry.status,
        "target": entry.target,
        "selection": None if entry.selection is None else dict(entry.selection),
        "affected": entry.affected,
    }


def list_entries(
    conn: Connection, where: AuditFilter, *, limit: int, before_id: int | None = None
) -> list[AuditRecord]:
    """Rows matching ``where``, newest first, older than ``before_id`` (keyset pagination)."""
    conditions = where.where()
    if before_id is not None:
        conditions.append(_A.id < before_id)
    query = sa.select(audit_log).where(*conditions).order_by(_A.id.desc()).limit(limit)
    return [
        AuditRecord(
            id=int(r["id"]),
            at=as_utc(r["at"]),
            principal=r["principal"],
            role=r["role"],
            method=r["method"],
            route=r["route"],
            status=int(r["status"]),
            target=r["target"],
            selection=r["selection"],
            affected=r["affected"],
        )
        for r in conn.execute(query).mappings()
    ]


#: The routes whose mutations are configuration changes (the ``/api/v1/events/stream`` feed).
CONFIG_ROUTE_PREFIXES = (
    "/api/v1/machines",
    "/api/v1/api-keys",
    "/api/v1/webhooks",
    "/api/v1/settings",
)
#: Mutating routes under those prefixes that change nothing (they compute).
NOT_CONFIG_ROUTES = ("/api/v1/machines/validate", "/api/v1/webhooks/{webhook_id}/test")


def config_feed(
    conn: Connection,
    *,
    limit: int,
    after: FeedPosition | None = None,
    after_id: int | None = None,
) -> list[tuple[FeedPosition, AuditRecord]]:
    """Successful configuration changes (machines, API keys, webhooks, settings) in
    commit-safe order after ``after`` (see :mod:`pystator.stores.sql.feed_queries`)."""
    conditions = feed_queries.feed_conditions(conn, audit_log, after=after, after_id=after_id)
    conditions += [
        _A.method != "GET",
        _A.status < 400,
        sa.or_(*(_A.route.startswith(p) for p in CONFIG_ROUTE_PREFIXES)),
        _A.route.not_in(NOT_CONFIG_ROUTES),
    ]
    query = (
        sa.select(audit_log)
        .where(*conditions)
        .order_by(*feed_queries.feed_order(audit_log))
        .limit(limit)
    )
    return [
        (FeedPosition(int(r["commit_xid"]), int(r["id"])), _record(r))
        for r in conn.execute(query).mappings()
    ]


def _record(r: RowMapping) -> AuditRecord:
    return AuditRecord(
        id=int(r["id"]),
        at=as_utc(r["at"]),
        principal=r["principal"],
        role=r["role"],
        method=r["method"],
        route=r["route"],
        status=int(r["status"]),
        target=r["target"],
        selection=r["selection"],
        affected=r["affected"],
    )


__all__ = [
    "CONFIG_ROUTE_PREFIXES",
    "AuditEntry",
    "AuditFilter",
    "AuditRecord",
    "config_feed",
    "insert_entries",
    "insert_entry",
    "list_entries",
]
