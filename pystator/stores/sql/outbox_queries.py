"""Every query on ``action_outbox``: actions to run after commit, at least once, in order.

A row's id is the action's dedup token. Rows are inserted by the transaction that applied their
event, run right after commit by that worker, and swept by the relay if that worker died (a row
becomes claimable only after a lease).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from pystator.stores.sql.locking import is_postgres
from pystator.stores.sql.rows import NewAction, OutboxRow, OutboxStatus, chunks, outbox_from_row
from pystator.stores.sql.schema import action_outbox

_O = action_outbox.c


def insert_outbox(
    conn: Connection, actions: Sequence[NewAction], now: datetime, *, lease: timedelta
) -> list[int]:
    """Store actions to run after commit; returns their ids (the dedup tokens) in input order.

    Rows become available to the outbox sweep only after ``lease``: the worker that committed
    them runs them right away, and the sweep picks them up only if that worker died.
    """
    if not actions:
        return []
    ids: list[int] = []
    for chunk in chunks(actions):
        rows = [
            {
                "event_id": a.event_id,
                "machine": a.machine,
                "entity_id": a.entity_id,
                "entity_version": a.entity_version,
                "action": a.action,
                "phase": a.phase,
                "params": dict(a.params),
                "context": dict(a.context),
                "status": OutboxStatus.PENDING,
                "attempts": 0,
                "errors": [],
                "available_at": now + lease,
                "created_at": now,
            }
            for a in chunk
        ]
        returned = conn.execute(sa.insert(action_outbox).returning(_O.id), rows).all()
        ids.extend(sorted(int(r[0]) for r in returned))
    return ids


def load_outbox(conn: Connection, ids: Sequence[int]) -> list[OutboxRow]:
    """Outbox rows by id, in id order."""
    if not ids:
        return []
    query = sa.select(action_outbox).where(_O.id.in_(list(ids))).order_by(_O.id)
    return [outbox_from_row(r) for r in conn.execute(query).mappings()]


def claim_outbox(
    conn: Connection, now: datetime, limit: int, *, lease: timedelta
) -> list[OutboxRow]:
    """Take stranded or due-for-retry actions (``FOR UPDATE SKIP LOCKED`` on PostgreSQL).

    Claiming pushes ``available_at`` out by ``lease`` so no other sweeper takes them meanwhile.
    """
    query = (
        sa.select(action_outbox)
        .where(_O.status == OutboxStatus.PENDING, _O.available_at <= now)
        .order_by(_O.id)
        .limit(limit)
    )
    if is_postgres(conn):
        query = query.with_for_update(skip_locked=True)
    rows = [outbox_from_row(r) for r in conn.execute(query).mappings()]
    if rows:
        conn.execute(
            sa.update(action_outbox)
            .where(_O.id.in_([r.id for r in rows]))
            .values(available_at=now + lease)
        )
    return rows


def complete_outbox(conn: Connection, ids: Sequence[int], now: datetime) -> None:
    """Mark actions done."""
    if ids:
        conn.execute(
            sa.update(action_outbox)
            .where(_O.id.in_(list(ids)), _O.status == OutboxStatus.PENDING)
            .values(status=OutboxStatus.DONE, attempts=_O.attempts + 1, completed_at=now)
        )


def fail_outbox(
    conn: Connection,
    action_id: int,
    errors: Sequence[Mapping[str, Any]],
    now: datetime,
    *,
    retry_at: datetime | None,
) -> None:
    """Count a failed run: retry at ``retry_at``, or ``dead`` when it is None."""
    values: dict[str, Any] = {
        "attempts": _O.attempts + 1,
        "errors": [dict(e) for e in errors],
    }
    if retry_at is None:
        values.update(status=OutboxStatus.DEAD, completed_at=now)
    else:
        values["available_at"] = retry_at
    conn.execute(
        sa.update(action_outbox)
        .where(_O.id == action_id, _O.status == OutboxStatus.PENDING)
        .values(**values)
    )


def list_outbox(
    conn: Connection, *, status: str | None = None, event_id: int | None = None, limit: int = 100
) -> list[OutboxRow]:
    """Outbox rows, newest first, filtered by status and/or event."""
    query = sa.select(action_outbox).order_by(_O.id.desc()).limit(limit)
    if status is not None:
        query = query.where(_O.status == status)
    if event_id is not None:
        query = query.where(_O.event_id == event_id)
    return [outbox_from_row(r) for r in conn.execute(query).mappings()]


__all__ = [
    "claim_outbox",
    "complete_outbox",
    "fail_outbox",
    "insert_outbox",
    "list_outbox",
    "load_outbox",
]
