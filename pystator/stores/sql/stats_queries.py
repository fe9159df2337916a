"""Fleet statistics from the tables (never from process memory): counts by machine and status,
the backlog, the oldest due event's age, and applied / retried / dead events per minute.

Per-minute counts read events whose ``updated_at`` lies in the window, through the
``(status, updated_at)`` index; retries come from the ``at`` of each failed attempt kept in
``worker_events.errors``.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from pystator.clock import as_utc
from pystator.fsm_core.records import EventStatus
from pystator.stores.sql.locking import is_postgres
from pystator.stores.sql.schema import worker_events

_W = worker_events.c
_ALL_STATUSES = [str(s) for s in EventStatus]

_RETRIES_PG = sa.text(
    """
    SELECT substr(e->>'at', 1, 16) AS minute, count(*) AS n
    FROM worker_events AS w, jsonb_array_elements(w.errors) AS e
    WHERE w.status = ANY(:statuses) AND w.updated_at >= :since
      AND e->>'at' >= :since_text AND (e->>'attempt')::int < w.max_attempts
    GROUP BY 1
    """
).bindparams(sa.bindparam("since", type_=_W.updated_at.type))
_RETRIES_SQLITE = sa.text(
    """
    SELECT substr(json_extract(e.value, '$.at'), 1, 16) AS minute, count(*) AS n
    FROM worker_events AS w, json_each(w.errors) AS e
    WHERE w.status IN (SELECT value FROM json_each(:statuses_json)) AND w.updated_at >= :since
      AND json_extract(e.value, '$.at') >= :since_text
      AND CAST(json_extract(e.value, '$.attempt') AS INTEGER) < w.max_attempts
    GROUP BY 1
    """
).bindparams(sa.bindparam("since", type_=_W.updated_at.type))


def by_machine(conn: Connection) -> dict[str, dict[str, int]]:
    """Event counts per machine and status."""
    counts: dict[str, dict[str, int]] = defaultdict(dict)
    query = sa.select(_W.machine, _W.status, sa.func.count()).group_by(_W.machine, _W.status)
    for machine, status, count in conn.execute(query).all():
        counts[machine][str(status)] = int(count)
    return dict(counts)


def backlog(conn: Connection, now: datetime) -> dict[str, Any]:
    """Pending events (all, and due by ``now``) and the age in seconds of the oldest due one."""
    pending = _W.status == EventStatus.PENDING
    due, oldest = conn.execute(
        sa.select(sa.func.count(), sa.func.min(_W.fires_at)).where(pending, _W.fires_at <= now)
    ).one()
    total = conn.execute(sa.select(sa.func.count()).where(pending)).scalar_one()
    age = (now - as_utc(oldest)).total_seconds() if oldest is not None else 0.0
    return {"pending": int(total), "due": int(due), "oldest_due_seconds": round(age, 3)}


def per_minute(conn: Connection, now: datetime, *, minutes: int = 60) -> list[dict[str, Any]]:
    """Applied, retried (failed attempts that will be tried again) and dead events for each of
    the last ``minutes`` minutes, oldest first (``minute`` as ``YYYY-MM-DDTHH:MM`` UTC)."""
    since = (now - timedelta(minutes=minutes - 1)).replace(second=0, microsecond=0)
    buckets = {
        (since + timedelta(minutes=i)).strftime("%Y-%m-%dT%H:%M"): {
            "applied": 0,
            "retried": 0,
            "dead": 0,
        }
        for i in range(minutes)
    }
    for status, name in ((EventStatus.COMPLETED, "applied"), (EventStatus.DEAD, "dead")):
        for minute, count in _finished_per_minute(conn, status, since):
            if minute in buckets:
                buckets[minute][name] += count
    for minute, count in _retries_per_minute(conn, since):
        if minute in buckets:
            buckets[minute]["retried"] += count
    return [{"minute": minute, **counts} for minute, counts in buckets.items()]


def _finished_per_minute(
    conn: Connection, status: EventStatus, since: datetime
) -> list[tuple[str, int]]:
    if is_postgres(conn):
        minute: sa.ColumnElement[Any] = sa.func.to_char(
            sa.func.timezone("UTC", _W.updated_at), 'YYYY-MM-DD"T"HH24:MI'
        )
    else:
        minute = sa.func.strftime("%Y-%m-%dT%H:%M", _W.updated_at)
    query = (
        sa.select(minute, sa.func.count())
        .where(_W.status == status, _W.updated_at >= since)
        .group_by(minute)
    )
    return [(str(m), int(n)) for m, n in conn.execute(query).all()]


def _retries_per_minute(conn: Connection, since: datetime) -> list[tuple[str, int]]:
    since_text = since.isoformat()
    if is_postgres(conn):
        rows = conn.execute(
            _RETRIES_PG, {"statuses": _ALL_STATUSES, "since": since, "since_text": since_text}
        )
    else:
        rows = conn.execute(
            _RETRIES_SQLITE,
            {
                "statuses_json": _json_list(_ALL_STATUSES),
                "since": since,
                "since_text": since_text,
            },
        )
    return [(str(m), int(n)) for m, n in rows.all()]


def _json_list(items: list[str]) -> str:
    return "[" + ",".join(f'"{item}"' for item in items) + "]"


__all__ = ["backlog", "by_machine", "per_minute"]
