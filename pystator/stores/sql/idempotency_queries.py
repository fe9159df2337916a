"""Idempotency keys for operators: the events a key names, recent repeats, recent conflicts.

Every query reads an index: ``(machine, idempotency_key)`` (the unique constraint, one probe per
machine named), the partial index on ``last_duplicate_at``, and ``idempotency_conflicts``'
``created_at``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from pystator.fsm_core.clock import as_utc
from pystator.stores.sql.rows import EventRow, event_from_row
from pystator.stores.sql.schema import idempotency_conflicts, worker_events

_W = worker_events.c
_C = idempotency_conflicts.c


def events_with_key(conn: Connection, key: str, machines: Sequence[str]) -> list[EventRow]:
    """The events stored under ``key`` for any of ``machines`` (at most one per machine)."""
    if not machines:
        return []
    query = (
        sa.select(worker_events)
        .where(_W.idempotency_key == key, _W.machine.in_(list(machines)))
        .order_by(_W.id)
    )
    return [event_from_row(r) for r in conn.execute(query).mappings()]


def recent_duplicates(conn: Connection, *, limit: int) -> list[EventRow]:
    """Events whose key was repeated (same content), the latest repeat first."""
    query = (
        sa.select(worker_events)
        .where(_W.last_duplicate_at.is_not(None))
        .order_by(_W.last_duplicate_at.desc())
        .limit(limit)
    )
    return [event_from_row(r) for r in conn.execute(query).mappings()]


def recent_conflicts(
    conn: Connection, *, limit: int, key: str | None = None
) -> list[dict[str, Any]]:
    """Refused submissions that reused a key with different content, newest first."""
    query = sa.select(idempotency_conflicts).order_by(_C.id.desc()).limit(limit)
    if key is not None:
        query = query.where(_C.idempotency_key == key)
    rows = []
    for row in conn.execute(query).mappings():
        item = dict(row)
        item["created_at"] = as_utc(row["created_at"])
        rows.append(item)
    return rows


__all__ = ["events_with_key", "recent_conflicts", "recent_duplicates"]
