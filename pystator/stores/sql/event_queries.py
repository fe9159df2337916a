"""Claiming and settling events: which entities have due work, their events, and the outcome.

Times are passed in (the caller's clock), so the queries behave identically on PostgreSQL and
SQLite. An entity's events apply in id order; a not-yet-due event (a future ``fires_at`` or a
waiting retry) holds back the later events of its own entity only.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from pystator.fsm_core.records import EntityKey, EventStatus
from pystator.stores.sql.locking import is_postgres, try_lock_expression
from pystator.stores.sql.rows import EventRow, FailedEvent, FinishedEvent, chunks, event_from_row
from pystator.stores.sql.schema import worker_events

_W = worker_events.c

#: Entities fetched per claim attempt before trying their locks (PostgreSQL).
CLAIM_OVERSCAN = 4


def _due_heads(now: datetime, *where: sa.ColumnElement[bool]) -> sa.Select[Any]:
    """Entities whose oldest pending event is due (a waiting retry holds its entity back)."""
    heads = (
        sa.select(_W.machine, _W.entity_id, sa.func.min(_W.id).label("head"))
        .where(_W.status == EventStatus.PENDING, *where)
        .group_by(_W.machine, _W.entity_id)
        .subquery("heads")
    )
    head_event = worker_events.alias("head_event")
    return (
        sa.select(heads.c.machine, heads.c.entity_id, heads.c.head)
        .join(head_event, head_event.c.id == heads.c.head)
        .where(head_event.c.fires_at <= now)
        .order_by(heads.c.head)
    )


def claim_entities(conn: Connection, now: datetime, limit: int) -> list[EntityKey]:
    """Entities with due pending events that this transaction now owns, oldest first.

    On PostgreSQL each is guarded by a transaction-scoped advisory lock, so two workers never
    work on one entity at once; entities locked by others are skipped. On SQLite the transaction
    itself (``BEGIN IMMEDIATE``) is the lock.
    """
    if not is_postgres(conn):
        rows = conn.execute(_due_heads(now).limit(limit)).all()
        return [(r[0], r[1]) for r in rows]
    candidates = _due_heads(now).limit(limit * CLAIM_OVERSCAN).subquery("candidates")
    query = (
        sa.select(candidates.c.machine, candidates.c.entity_id)
        .where(try_lock_expression(candidates.c.machine, candidates.c.entity_id))
        .limit(limit)
    )
    return [(r[0], r[1]) for r in conn.execute(query).all()]


def pending_events(
    conn: Connection,
    keys: Sequence[EntityKey],
    now: datetime,
    *,
    limit: int = 100,
    max_bytes: int | None = None,
) -> dict[EntityKey, list[EventRow]]:
    """Each entity's pending events in id order, up to (not including) its first not yet due
    event, at most ``limit`` per entity, in one query.

    ``max_bytes`` bounds the stored size of the contexts loaded: entities take turns (every
    entity's first event, then every second one, …) until the budget is spent; each entity
    still gets its first event, so a batch always moves.
    """
    if not keys:
        return {}
    text = sa.cast(_W.context, sa.Text)  # the JSON as loaded (stored sizes are compressed)
    size = sa.func.octet_length(text) if is_postgres(conn) else sa.func.length(text)
    rank = sa.func.row_number().over(partition_by=(_W.machine, _W.entity_id), order_by=_W.id)
    ranked = (
        sa.select(worker_events, rank.label("rank"), size.label("bytes"))
        .where(
            _W.status == EventStatus.PENDING,
            sa.tuple_(_W.machine, _W.entity_id).in_(list(keys)),
        )
        .subquery("ranked")
    )
    running = (
        sa.func.sum(ranked.c.bytes)
        .over(order_by=(ranked.c.rank, ranked.c.machine, ranked.c.entity_id))
        .label("running")
    )
    budgeted = sa.select(ranked, running).where(ranked.c.rank <= limit).subquery("budgeted")
    query = sa.select(budgeted).order_by(budgeted.c.machine, budgeted.c.entity_id, budgeted.c.id)
    if max_bytes is not None:
        query = query.where(sa.or_(budgeted.c.rank == 1, budgeted.c.running <= max_bytes))
    out: dict[EntityKey, list[EventRow]] = {}
    blocked: set[EntityKey] = set()
    for row in conn.execute(query).mappings():
        event = event_from_row(row)
        key = (event.machine, event.entity_id)
        if key in blocked:
            continue
        if event.fires_at > now:
            blocked.add(key)  # order: nothing after a not-yet-due event may run
            continue
        out.setdefault(key, []).append(event)
    return out


def complete_events(conn: Connection, finished: Sequence[FinishedEvent], now: datetime) -> None:
    """Close events (completed / rejected / stale) with their outcome in one statement.

    PostgreSQL: ``UPDATE … FROM (VALUES …)``; SQLite: an executemany (no round trips there).
    """
    if not finished:
        return
    if is_postgres(conn):
        for chunk in chunks(finished):
            _complete_from_values(conn, chunk, now)
        return
    statement = (
        sa.update(worker_events)
        .where(_W.id == sa.bindparam("b_id"), _W.status == EventStatus.PENDING)
        .values(
            status=sa.bindparam("b_status"),
            outcome=sa.bindparam("b_outcome", type_=worker_events.c.outcome.type),
            attempts=_W.attempts + 1,
            updated_at=now,
            completed_at=now,
        )
    )
    conn.execute(
        statement,
        [{"b_id": f.id, "b_status": f.status, "b_outcome": dict(f.outcome)} for f in finished],
    )


_COMPLETE_FROM_ARRAYS = sa.text(
    """
    UPDATE worker_events AS w
    SET status = d.status, outcome = CAST(d.outcome AS jsonb), attempts = w.attempts + 1,
        updated_at = :now, completed_at = :now
    FROM (
        SELECT unnest(CAST(:ids AS bigint[])) AS id,
               unnest(CAST(:statuses AS text[])) AS status,
               unnest(CAST(:outcomes AS text[])) AS outcome
    ) AS d
    WHERE w.id = d.id AND w.status = 'pending'
    """
)


def _complete_from_values(
    conn: Connection, finished: Sequence[FinishedEvent], now: datetime
) -> None:
    # Three array parameters: one cached statement whatever the batch size.
    conn.execute(
        _COMPLETE_FROM_ARRAYS,
        {
            "ids": [f.id for f in finished],
            "statuses": [f.status for f in finished],
            "outcomes": [json.dumps(dict(f.outcome)) for f in finished],
            "now": now,
        },
    )


def fail_events(conn: Connection, failed: Sequence[FailedEvent], now: datetime) -> None:
    """Count failed attempts and keep their errors: each event is due again at its
    ``retry_at``, or dead (dead-lettered, errors of every attempt kept) when that is None."""
    for event in failed:
        values: dict[str, Any] = {
            "attempts": _W.attempts + 1,
            "errors": [dict(e) for e in event.errors],
            "updated_at": now,
        }
        if event.retry_at is None:
            values.update(
                status=EventStatus.DEAD, outcome={"reason": "max_attempts"}, completed_at=now
            )
        else:
            values["fires_at"] = event.retry_at
        conn.execute(
            sa.update(worker_events)
            .where(_W.id == event.id, _W.status == EventStatus.PENDING)
            .values(**values)
        )


def due_among(conn: Connection, keys: Sequence[EntityKey], now: datetime) -> list[EntityKey]:
    """Which of ``keys`` have a due oldest pending event (a read, no lock: what a nudge asks)."""
    if not keys:
        return []
    mine = sa.tuple_(_W.machine, _W.entity_id).in_(list(dict.fromkeys(keys)))
    return [(r[0], r[1]) for r in conn.execute(_due_heads(now, mine)).all()]


def oldest_due_event(conn: Connection, now: datetime) -> int | None:
    """The id of the oldest pending event due at ``now``; None when no event is due.

    Every event with a smaller id that this statement's snapshot sees is settled or not yet due.
    """
    query = sa.select(sa.func.min(_W.id)).where(
        _W.status == EventStatus.PENDING, _W.fires_at <= now
    )
    oldest = conn.execute(query).scalar_one()
    return None if oldest is None else int(oldest)


def due_unclaimed_events(
    conn: Connection, now: datetime, *, grace: timedelta, limit: int
) -> list[EntityKey]:
    """Entities the relay should nudge: a due event nobody took.

    An event submitted for now got its own nudge; it counts as stranded only after ``grace``.
    An event that became due later (``fires_at`` in the future at submission, a retry, a timer)
    had no nudge at its due time, so it counts as soon as it is due.
    """
    heads = _due_heads(now).subquery("due")
    head = worker_events.alias("stranded_head")
    query = (
        sa.select(heads.c.machine, heads.c.entity_id)
        .join(head, head.c.id == heads.c.head)
        .where(sa.or_(head.c.fires_at > head.c.created_at, head.c.created_at <= now - grace))
        .order_by(heads.c.head)
        .limit(limit)
    )
    return [(r[0], r[1]) for r in conn.execute(query).all()]


__all__ = [
    "CLAIM_OVERSCAN",
    "claim_entities",
    "complete_events",
    "due_among",
    "due_unclaimed_events",
    "fail_events",
    "oldest_due_event",
    "pending_events",
]
