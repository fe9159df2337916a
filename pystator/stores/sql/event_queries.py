"""Claiming and settling events: which entities have due work, their events, and the outcome.

Due-ness is decided against the fleet's clock (:mod:`pystator.stores.sql.db_clock`): ``now``
None is the database server's ``statement_timestamp()`` on PostgreSQL; a datetime (SQLite's
host clock, or a test's clock) is used as given. The claim returns the time it decided with, so
the transaction stamps its rows with the same clock. An entity's events apply in id order; a
not-yet-due event (a future ``fires_at`` or a waiting retry) holds back the later events of its
own entity only.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from pystator.fsm_core.clock import as_utc
from pystator.fsm_core.records import EntityKey, EventStatus
from pystator.stores.sql.db_clock import FLEET_NOW
from pystator.stores.sql.locking import is_postgres, try_lock_expression
from pystator.stores.sql.rows import EventRow, FailedEvent, FinishedEvent, chunks, event_from_row
from pystator.stores.sql.schema import worker_events

_W = worker_events.c

#: Entities fetched per claim attempt before trying their locks (PostgreSQL).
CLAIM_OVERSCAN = 4


# The worker's hot statements are built once, with bound parameters (``now``, ``keys``,
# ``limit``, …): building a statement with subqueries and aliases of this 20-column table cost
# more CPU than executing it, on every nudge.
_NOW = FLEET_NOW
_KEYS: sa.BindParameter[Any] = sa.bindparam("keys", expanding=True)
_LIMIT = sa.bindparam("limit", type_=sa.Integer)


def _is_due(events: Any, now: Any) -> sa.ColumnElement[bool]:
    """An event is due when the fleet's clock has reached its ``fires_at``, or when it was
    stamped due at its own submission (``fires_at <= created_at``, both written by the same
    statement): an immediate event is due whatever happens to the clock afterwards (a database
    clock stepped back by NTP, or a producer with a clock of its own). Retries and delayed events
    (``fires_at`` later than ``created_at``) wait for the clock."""
    return sa.or_(events.fires_at <= now, events.fires_at <= events.created_at)


def _due_in_memory(event: EventRow, now: datetime) -> bool:
    """:func:`_is_due` for an event already loaded."""
    return event.fires_at <= now or event.fires_at <= event.created_at


def _due_heads(*where: sa.ColumnElement[bool]) -> sa.Select[Any]:
    """Entities whose oldest pending event is due at ``:now`` (a waiting retry holds its entity
    back), oldest head first."""
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
        .where(_is_due(head_event.c, _NOW))
        .order_by(heads.c.head)
    )


_DUE_AMONG = _due_heads(sa.tuple_(_W.machine, _W.entity_id).in_(_KEYS))


_CLAIM_SQLITE = _due_heads().add_columns(_NOW.label("now")).limit(_LIMIT)


def _claim_postgres() -> sa.Select[Any]:
    candidates = _due_heads().limit(_LIMIT * CLAIM_OVERSCAN).subquery("candidates")
    return (
        sa.select(candidates.c.machine, candidates.c.entity_id, _NOW.label("now"))
        .where(try_lock_expression(candidates.c.machine, candidates.c.entity_id))
        .limit(_LIMIT)
    )


_CLAIM_POSTGRES = _claim_postgres()


def claim_entities(
    conn: Connection, now: datetime | None, limit: int
) -> tuple[list[EntityKey], datetime | None]:
    """Entities with due pending events that this transaction now owns, oldest first, and the
    fleet's time the claim decided with (None when it claimed nothing).

    On PostgreSQL each is guarded by a transaction-scoped advisory lock, so two workers never
    work on one entity at once; entities locked by others are skipped. On SQLite the transaction
    itself (``BEGIN IMMEDIATE``) is the lock.
    """
    query = _CLAIM_POSTGRES if is_postgres(conn) else _CLAIM_SQLITE
    rows = conn.execute(query, {"now": now, "limit": limit}).all()
    at = as_utc(rows[0][-1]) if rows else None
    return [(r[0], r[1]) for r in rows], at


def _pending_events(*, postgres: bool, budgeted: bool) -> sa.Select[Any]:
    text = sa.cast(_W.context, sa.Text)  # the JSON as loaded (stored sizes are compressed)
    size = sa.func.octet_length(text) if postgres else sa.func.length(text)
    rank = sa.func.row_number().over(partition_by=(_W.machine, _W.entity_id), order_by=_W.id)
    ranked = (
        sa.select(worker_events, rank.label("rank"), size.label("bytes"))
        .where(_W.status == EventStatus.PENDING, sa.tuple_(_W.machine, _W.entity_id).in_(_KEYS))
        .subquery("ranked")
    )
    running = (
        sa.func.sum(ranked.c.bytes)
        .over(order_by=(ranked.c.rank, ranked.c.machine, ranked.c.entity_id))
        .label("running")
    )
    inner = sa.select(ranked, running).where(ranked.c.rank <= _LIMIT).subquery("budgeted")
    query = sa.select(inner).order_by(inner.c.machine, inner.c.entity_id, inner.c.id)
    if budgeted:
        max_bytes = sa.bindparam("max_bytes", type_=sa.BigInteger)
        query = query.where(sa.or_(inner.c.rank == 1, inner.c.running <= max_bytes))
    return query


#: (postgres, budgeted) -> the statement :func:`pending_events` runs.
_PENDING_EVENTS = {
    (postgres, budgeted): _pending_events(postgres=postgres, budgeted=budgeted)
    for postgres in (True, False)
    for budgeted in (True, False)
}


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
    query = _PENDING_EVENTS[is_postgres(conn), max_bytes is not None]
    params: dict[str, Any] = {"keys": list(keys), "limit": limit}
    if max_bytes is not None:
        params["max_bytes"] = max_bytes
    out: dict[EntityKey, list[EventRow]] = {}
    blocked: set[EntityKey] = set()
    for row in conn.execute(query, params).mappings():
        event = event_from_row(row)
        key = (event.machine, event.entity_id)
        if key in blocked:
            continue
        if not _due_in_memory(event, now):
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


def due_among(conn: Connection, keys: Sequence[EntityKey], now: datetime | None) -> list[EntityKey]:
    """Which of ``keys`` have a due oldest pending event (a read, no lock: what a nudge asks)."""
    if not keys:
        return []
    rows = conn.execute(_DUE_AMONG, {"keys": list(dict.fromkeys(keys)), "now": now}).all()
    return [(r[0], r[1]) for r in rows]


_OLDEST_DUE = sa.select(sa.func.min(_W.id)).where(
    _W.status == EventStatus.PENDING, _is_due(_W, _NOW)
)


def oldest_due_event(conn: Connection, now: datetime | None) -> int | None:
    """The id of the oldest pending event due at ``now``; None when no event is due.

    Every event with a smaller id that this statement's snapshot sees is settled or not yet due.
    """
    oldest = conn.execute(_OLDEST_DUE, {"now": now}).scalar_one()
    return None if oldest is None else int(oldest)


def _backlog_page() -> sa.Select[Any]:
    # Heads among the events up to ``through`` only: an entity's oldest event up to it is its
    # oldest event at all exactly when that one is part of the backlog.
    heads = (
        _due_heads(_W.id <= sa.bindparam("through", type_=sa.BigInteger))
        .order_by(None)
        .subquery("backlog")
    )
    return (
        sa.select(heads.c.machine, heads.c.entity_id, heads.c.head)
        .where(heads.c.head > sa.bindparam("after", type_=sa.BigInteger))
        .order_by(heads.c.head)
        .limit(_LIMIT)
    )


_BACKLOG_PAGE = _backlog_page()


def backlog_entities(
    conn: Connection, now: datetime | None, *, through: int, after: int = 0, limit: int
) -> list[tuple[EntityKey, int]]:
    """Entities whose oldest pending event is due and has an id in ``(after, through]``, oldest
    head first, at most ``limit``, with that head's id (to list the next page after it).

    What a starting worker drains (``through``: the newest event when it started). One scan of
    the pending events, no lock: the entities are locked, and their events loaded in order,
    when they are applied.
    """
    params = {"now": now, "through": through, "after": after, "limit": limit}
    return [((r[0], r[1]), int(r[2])) for r in conn.execute(_BACKLOG_PAGE, params).all()]


_NEWEST = sa.select(sa.func.max(_W.id))


def newest_event_id(conn: Connection) -> int | None:
    """The highest event id so far (None: no event): what a starting worker calls its backlog."""
    newest = conn.execute(_NEWEST).scalar_one()
    return None if newest is None else int(newest)


def _stranded() -> sa.Select[Any]:
    heads = _due_heads().order_by(None).subquery("due")
    head = worker_events.alias("stranded_head")
    grace = sa.bindparam("grace", type_=sa.Interval)
    return (
        sa.select(heads.c.machine, heads.c.entity_id)
        .join(head, head.c.id == heads.c.head)
        .where(
            heads.c.head > sa.bindparam("after", type_=sa.BigInteger),
            sa.or_(head.c.fires_at > head.c.created_at, head.c.created_at <= _NOW - grace),
        )
        .order_by(heads.c.head)
        .limit(_LIMIT)
    )


_STRANDED = _stranded()


def due_unclaimed_events(
    conn: Connection, now: datetime | None, *, grace: timedelta, limit: int, after: int = 0
) -> list[EntityKey]:
    """Entities the relay should nudge: a due event nobody took.

    An event submitted for now got its own nudge; it counts as stranded only after ``grace``.
    An event that became due later (``fires_at`` in the future at submission, a retry, a timer)
    had no nudge at its due time, so it counts as soon as it is due. Entities whose oldest
    pending event has an id up to ``after`` are left out (a start-up drain applies them).
    """
    params = {"now": now, "grace": grace, "after": after, "limit": limit}
    return [(r[0], r[1]) for r in conn.execute(_STRANDED, params).all()]


__all__ = [
    "CLAIM_OVERSCAN",
    "backlog_entities",
    "claim_entities",
    "complete_events",
    "due_among",
    "due_unclaimed_events",
    "fail_events",
    "newest_event_id",
    "oldest_due_event",
    "pending_events",
]
