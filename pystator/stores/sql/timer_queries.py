"""Every query on ``worker_timers``: arm, cancel, take due timers, hand them to a scheduler.

An armed timer is one row until it fires or its state entry is left; both delete it, so a timer
can be taken (fired) at most once, whoever asks: the table poller, a Redis poller, a Celery ETA
task or the recovery sweep. Times are passed in: the fleet's clock, read at the start of the
caller's transaction (:func:`pystator.stores.sql.db_clock.read_now`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from pystator.fsm_core.clock import as_utc
from pystator.fsm_core.records import ArmedTimer
from pystator.stores.sql.locking import is_postgres
from pystator.stores.sql.rows import chunks
from pystator.stores.sql.schema import worker_timers

_T = worker_timers.c

#: Timer ids per ``IN (...)`` list (keeps statements well under bind-parameter limits).
ID_CHUNK = 1000


def _insert(conn: Connection) -> Any:
    dialect = postgresql if is_postgres(conn) else sqlite
    return dialect.insert(worker_timers)


def _timer(row: Any) -> ArmedTimer:
    return ArmedTimer(
        machine=row.machine,
        entity_id=row.entity_id,
        key=row.timer_key,
        state=row.timer_state,
        entry=int(row.timer_entry),
        trigger=row.trigger,
        due_at=as_utc(row.due_at),
        trace=row.traceparent,
    )


def arm(
    conn: Connection,
    timers: Sequence[ArmedTimer],
    now: datetime,
    *,
    handed_until: datetime | None = None,
) -> None:
    """Store armed timers; arming one twice is a no-op (same ``timer_id``).

    Timers due at or before ``handed_until`` are marked handed off: the caller publishes them to
    an external scheduler right after commit.
    """
    rows = [
        {
            "timer_id": t.timer_id,
            "machine": t.machine,
            "entity_id": t.entity_id,
            "trigger": t.trigger,
            "timer_key": t.key,
            "timer_state": t.state,
            "timer_entry": t.entry,
            "due_at": t.due_at or now,
            "handed_at": (
                now if handed_until is not None and (t.due_at or now) <= handed_until else None
            ),
            "created_at": now,
            "traceparent": t.trace,
        }
        for t in timers
    ]
    for chunk in chunks(rows, ID_CHUNK):
        conn.execute(_insert(conn).on_conflict_do_nothing(index_elements=["timer_id"]), chunk)


def cancel(conn: Connection, timers: Sequence[ArmedTimer]) -> int:
    """Delete the timers of exited state entries; returns how many were still armed."""
    ids = [t.timer_id for t in timers]
    total = 0
    for chunk in chunks(ids, ID_CHUNK):
        total += conn.execute(sa.delete(worker_timers).where(_T.timer_id.in_(chunk))).rowcount
    return total


def take_due(conn: Connection, due_by: datetime, limit: int) -> list[ArmedTimer]:
    """Delete and return up to ``limit`` timers due at or before ``due_by``, earliest first.

    On PostgreSQL rows another transaction is taking are skipped (``SKIP LOCKED``), so any number
    of pollers can run at once; each timer is returned to exactly one of them.
    """
    due = (
        sa.select(_T.timer_id)
        .where(_T.due_at <= due_by, _T.dead_at.is_(None))
        .order_by(_T.due_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    query = sa.delete(worker_timers).where(_T.timer_id.in_(due.scalar_subquery()))
    rows = conn.execute(query.returning(*worker_timers.c)).all()
    return sorted((_timer(r) for r in rows), key=_due_order)


def take(conn: Connection, timer_ids: Sequence[str], due_by: datetime) -> list[ArmedTimer]:
    """Delete and return the timers among ``timer_ids`` still armed and due by ``due_by`` (a
    message naming a timer early, or a set-aside one, takes nothing)."""
    taken: list[ArmedTimer] = []
    for chunk in chunks(list(dict.fromkeys(timer_ids)), ID_CHUNK):
        query = sa.delete(worker_timers).where(
            _T.timer_id.in_(chunk), _T.due_at <= due_by, _T.dead_at.is_(None)
        )
        taken += [_timer(r) for r in conn.execute(query.returning(*worker_timers.c)).all()]
    return sorted(taken, key=_due_order)


def hand_off(conn: Connection, due_by: datetime, now: datetime, limit: int) -> list[ArmedTimer]:
    """Mark up to ``limit`` not yet handed timers due by ``due_by`` as handed; return them."""
    todo = (
        sa.select(_T.timer_id)
        .where(_T.handed_at.is_(None), _T.due_at <= due_by, _T.dead_at.is_(None))
        .order_by(_T.due_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    query = (
        sa.update(worker_timers)
        .where(_T.timer_id.in_(todo.scalar_subquery()))
        .values(handed_at=now)
        .returning(*worker_timers.c)
    )
    return sorted((_timer(r) for r in conn.execute(query).all()), key=_due_order)


def unhand(conn: Connection) -> int:
    """Forget every hand-off (after a worker died holding some: they are published again; a
    duplicate ETA message finds no row when the first one has fired). Returns how many."""
    query = sa.update(worker_timers).where(_T.handed_at.is_not(None)).values(handed_at=None)
    return int(conn.execute(query).rowcount)


def any_due(conn: Connection, due_by: datetime) -> bool:
    """True when a timer (not set aside) is due by ``due_by``."""
    query = sa.select(
        sa.exists().where(_T.due_at <= due_by, _T.dead_at.is_(None)).select_from(worker_timers)
    )
    return bool(conn.execute(query).scalar())


def not_due(conn: Connection, timer_ids: Sequence[str], due_by: datetime) -> dict[str, datetime]:
    """Those of ``timer_ids`` still armed (not set aside) and due after ``due_by``, with their
    due times."""
    found: dict[str, datetime] = {}
    for chunk in chunks(list(dict.fromkeys(timer_ids)), ID_CHUNK):
        query = sa.select(_T.timer_id, _T.due_at).where(
            _T.timer_id.in_(chunk), _T.due_at > due_by, _T.dead_at.is_(None)
        )
        found.update((str(r[0]), as_utc(r[1])) for r in conn.execute(query).all())
    return found


def due_ids(conn: Connection, due_by: datetime, limit: int) -> list[str]:
    """Ids of up to ``limit`` timers due by ``due_by`` (read only: for firing them one by one)."""
    query = (
        sa.select(_T.timer_id)
        .where(_T.due_at <= due_by, _T.dead_at.is_(None))
        .order_by(_T.due_at)
        .limit(limit)
    )
    return [str(r) for r in conn.execute(query).scalars()]


def record_failure(
    conn: Connection,
    timer_id: str,
    error: Mapping[str, Any],
    *,
    max_attempts: int,
    retry_at: datetime,
    now: datetime,
) -> bool:
    """Count a failed firing of one timer: due again at ``retry_at``, or set aside for good
    (``dead_at``) after ``max_attempts``. Returns True when it was set aside."""
    row = (
        conn.execute(
            sa.select(_T.attempts, _T.errors).where(_T.timer_id == timer_id).with_for_update()
        )
        .mappings()
        .first()
    )
    if row is None:
        return False
    attempts = int(row["attempts"]) + 1
    errors = [*(row["errors"] or []), {**error, "attempt": attempts}]
    dead = attempts >= max_attempts
    values: dict[str, Any] = {"attempts": attempts, "errors": errors}
    values.update({"dead_at": now} if dead else {"due_at": retry_at})
    conn.execute(sa.update(worker_timers).where(_T.timer_id == timer_id).values(**values))
    return dead


def count(conn: Connection) -> int:
    """How many timers are armed (set-aside ones not included)."""
    query = sa.select(sa.func.count()).select_from(worker_timers).where(_T.dead_at.is_(None))
    return int(conn.execute(query).scalar() or 0)


def armed_for(conn: Connection, machine: str, entity_id: str) -> list[dict[str, Any]]:
    """The timers armed for one entity (set-aside ones included, marked), soonest first."""
    query = (
        sa.select(worker_timers)
        .where(_T.machine == machine, _T.entity_id == entity_id)
        .order_by(_T.due_at)
    )
    return [
        {
            "timer_id": row.timer_id,
            "trigger": row.trigger,
            "key": row.timer_key,
            "state": row.timer_state,
            "entry": int(row.timer_entry),
            "due_at": as_utc(row.due_at),
            "attempts": int(row.attempts),
            "dead": row.dead_at is not None,
        }
        for row in conn.execute(query)
    ]


def count_for_machine(conn: Connection, machine: str) -> int:
    """How many timers of ``machine`` are armed (set-aside ones not included)."""
    query = sa.select(sa.func.count()).where(_T.machine == machine, _T.dead_at.is_(None))
    return int(conn.execute(query).scalar() or 0)


def _due_order(timer: ArmedTimer) -> tuple[datetime, str]:
    assert timer.due_at is not None
    return (timer.due_at, timer.timer_id)


__all__ = [
    "any_due",
    "arm",
    "armed_for",
    "cancel",
    "count",
    "count_for_machine",
    "due_ids",
    "hand_off",
    "not_due",
    "record_failure",
    "take",
    "take_due",
    "unhand",
]
