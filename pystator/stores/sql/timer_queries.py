"""Every query on ``worker_timers``: arm, cancel, take due timers, hand them to a scheduler.

An armed timer is one row until it fires or its state entry is left; both delete it, so a timer
can be taken (fired) at most once, whoever asks: the table poller, a Redis poller, a Celery ETA
task or the recovery sweep. Times are passed in (the caller's clock).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from pystator.clock import as_utc
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
        .where(_T.due_at <= due_by)
        .order_by(_T.due_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    query = sa.delete(worker_timers).where(_T.timer_id.in_(due.scalar_subquery()))
    rows = conn.execute(query.returning(*worker_timers.c)).all()
    return sorted((_timer(r) for r in rows), key=_due_order)


def take(conn: Connection, timer_ids: Sequence[str]) -> list[ArmedTimer]:
    """Delete and return the timers among ``timer_ids`` that are still armed."""
    taken: list[ArmedTimer] = []
    for chunk in chunks(list(dict.fromkeys(timer_ids)), ID_CHUNK):
        query = sa.delete(worker_timers).where(_T.timer_id.in_(chunk))
        taken += [_timer(r) for r in conn.execute(query.returning(*worker_timers.c)).all()]
    return sorted(taken, key=_due_order)


def hand_off(conn: Connection, due_by: datetime, now: datetime, limit: int) -> list[ArmedTimer]:
    """Mark up to ``limit`` not yet handed timers due by ``due_by`` as handed; return them."""
    todo = (
        sa.select(_T.timer_id)
        .where(_T.handed_at.is_(None), _T.due_at <= due_by)
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


def count(conn: Connection) -> int:
    """How many timers are armed."""
    return int(conn.execute(sa.select(sa.func.count()).select_from(worker_timers)).scalar() or 0)


def _due_order(timer: ArmedTimer) -> tuple[datetime, str]:
    assert timer.due_at is not None
    return (timer.due_at, timer.timer_id)


__all__ = ["arm", "cancel", "count", "hand_off", "take", "take_due"]
