"""Fleet statistics from the tables (never from process memory): counts by machine and status,
the backlog, the oldest due event's age, and applied / retried / dead events per minute.

Per-minute counts come from ``event_rollups`` (what the workers counted as they committed), so
they survive restarts and outlive the events retention removes.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from pystator.fsm_core.clock import as_utc
from pystator.fsm_core.records import EventStatus
from pystator.stores.sql import rollup_queries
from pystator.stores.sql.schema import worker_events

_W = worker_events.c
_ALL_STATUSES = [str(s) for s in EventStatus]

#: What :func:`per_minute` reports for each minute.
MINUTE_OUTCOMES = ("applied", "rejected", "retried", "dead")


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
    """Applied, rejected, retried (failed attempts that will be tried again) and dead events
    for each of the last ``minutes`` minutes, oldest first (``minute`` as ``YYYY-MM-DDTHH:MM``
    UTC), from ``event_rollups`` (what the workers counted; it outlives the events)."""
    since = (now - timedelta(minutes=minutes - 1)).replace(second=0, microsecond=0)
    buckets: dict[str, dict[str, int]] = {
        (since + timedelta(minutes=i)).strftime("%Y-%m-%dT%H:%M"): dict.fromkeys(MINUTE_OUTCOMES, 0)
        for i in range(minutes)
    }
    for minute, outcome, count in rollup_queries.per_minute(conn, since):
        bucket = buckets.get(minute.strftime("%Y-%m-%dT%H:%M"))
        if bucket is not None and outcome in bucket:
            bucket[outcome] += count
    return [{"minute": minute, **counts} for minute, counts in buckets.items()]


__all__ = ["MINUTE_OUTCOMES", "backlog", "by_machine", "per_minute"]
