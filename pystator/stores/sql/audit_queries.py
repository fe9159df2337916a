"""Every query on ``audit_log``: one row per mutation through the HTTP API and the dashboard,
and one per configuration change whichever door it came through (the HTTP API, the dashboard,
the command line, the Python facade).

A configuration change carries its :class:`ChangeKind` in ``kind``; the configuration-change feed
(``GET /api/v1/events/stream``) is the rows that have one. The function that makes the change
writes its row with :func:`record_change` on the change's own connection, inside its transaction:
the change and its row commit together, and a change that fails leaves no row.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, RowMapping

from pystator.config.identity import local_principal
from pystator.fsm_core.clock import as_utc
from pystator.stores.sql import feed_queries
from pystator.stores.sql.feed_queries import FeedPosition
from pystator.stores.sql.schema import audit_log

_A = audit_log.c


class ChangeKind(StrEnum):
    """The kind of a configuration change (the SSE event name of the configuration feed); the
    same change has the same kind whichever door made it."""

    MACHINE_PUBLISHED = "machine.published"
    MACHINE_RETIRED = "machine.retired"
    API_KEY_CREATED = "api_key.created"
    API_KEY_REVOKED = "api_key.revoked"
    WEBHOOK_CREATED = "webhook.created"
    WEBHOOK_UPDATED = "webhook.updated"
    WEBHOOK_DELETED = "webhook.deleted"


#: The role recorded for the doors outside the HTTP API: whoever holds the database URL can
#: do everything an admin can.
LOCAL_ROLE = "admin"
#: ``method`` of the rows written by the command line and by Python code (the HTTP API's rows
#: hold the request's method).
CLI_METHOD = "CLI"
PYTHON_METHOD = "PYTHON"


@dataclass(frozen=True, slots=True, kw_only=True)
class Actor:
    """Who makes a change and through which door: what its audit row records of the caller.

    Through the HTTP API: the caller's name and role, the request's method and route template.
    From the command line: ``cli:<user>@<host>``, ``admin``, ``CLI`` and the command
    (``machines sync``). From Python: ``runtime:<user>@<host>`` (or the library's door),
    ``admin``, ``PYTHON`` and the function called (``PyStatorRuntime.update_machine_from_dict``).
    """

    principal: str
    role: str
    method: str
    route: str

    @classmethod
    def cli(cls, command: str) -> Actor:
        """The actor of ``pystator <command>`` run by this process's user."""
        return cls(
            principal=local_principal("cli"), role=LOCAL_ROLE, method=CLI_METHOD, route=command
        )

    @classmethod
    def python(cls, door: str, function: str) -> Actor:
        """The actor of Python code calling ``function`` through ``door`` (``runtime``: the
        :class:`~pystator.runtime.PyStatorRuntime` facade), as this process's user."""
        return cls(
            principal=local_principal(door), role=LOCAL_ROLE, method=PYTHON_METHOD, route=function
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditEntry:
    """What one mutation did, and who asked for it (``kind``: the configuration change it made,
    if any)."""

    at: datetime
    principal: str
    role: str
    method: str
    route: str
    status: int
    target: str | None = None
    selection: Mapping[str, Any] | None = None
    affected: int | None = None
    kind: str | None = None


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


def record_change(
    conn: Connection,
    actor: Actor,
    *,
    at: datetime,
    kind: ChangeKind | None,
    status: int,
    target: str | None = None,
    selection: Mapping[str, Any] | None = None,
    affected: int | None = None,
) -> int:
    """Append the row of a change ``actor`` made, on the change's connection (so in its
    transaction); ``kind`` None: the call changed no configuration (a dry run, a definition
    identical to the current version). ``status`` is what the HTTP API answers for it (201
    when something was created, else 200). Returns the row's id."""
    return insert_entry(
        conn,
        AuditEntry(
            at=at,
            principal=actor.principal,
            role=actor.role,
            method=actor.method,
            route=actor.route,
            status=status,
            target=target,
            selection=selection,
            affected=affected,
            kind=None if kind is None else kind.value,
        ),
    )


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
        "kind": entry.kind,
    }


def list_entries(
    conn: Connection, where: AuditFilter, *, limit: int, before_id: int | None = None
) -> list[AuditRecord]:
    """Rows matching ``where``, newest first, older than ``before_id`` (keyset pagination)."""
    conditions = where.where()
    if before_id is not None:
        conditions.append(_A.id < before_id)
    query = sa.select(audit_log).where(*conditions).order_by(_A.id.desc()).limit(limit)
    return [_record(r) for r in conn.execute(query).mappings()]


def config_feed(
    conn: Connection,
    *,
    limit: int,
    after: FeedPosition | None = None,
    after_id: int | None = None,
) -> list[tuple[FeedPosition, AuditRecord]]:
    """Configuration changes (the rows with a ``kind``: machines, API keys, webhooks) in
    commit-safe order after ``after`` (see :mod:`pystator.stores.sql.feed_queries`)."""
    conditions = feed_queries.feed_conditions(conn, audit_log, after=after, after_id=after_id)
    conditions.append(_A.kind.is_not(None))
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
        kind=r["kind"],
    )


__all__ = [
    "CLI_METHOD",
    "LOCAL_ROLE",
    "PYTHON_METHOD",
    "Actor",
    "AuditEntry",
    "AuditFilter",
    "AuditRecord",
    "ChangeKind",
    "config_feed",
    "insert_entries",
    "insert_entry",
    "list_entries",
    "record_change",
]
