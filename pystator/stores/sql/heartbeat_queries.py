"""Every query on ``worker_heartbeats``, plus the due-backlog count health checks rely on."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from pystator.fsm_core.clock import as_utc, as_utc_or_none
from pystator.fsm_core.records import EventStatus
from pystator.stores.sql.locking import is_postgres
from pystator.stores.sql.schema import worker_events, worker_heartbeats

_B = worker_heartbeats.c
_W = worker_events.c

#: The due-backlog query the fleet, ``pystator health`` and the autoscaler run: pending events
#: whose time has come. Future events, waiting retries and armed timers are not due work.
DUE_BACKLOG_SQL = (
    "SELECT count(*) FROM worker_events WHERE status = 'pending' AND fires_at <= now()"
)


def beat(conn: Connection, values: Mapping[str, Any]) -> None:
    """Insert or refresh one worker's heartbeat row (``values`` holds every column)."""
    insert = (postgresql if is_postgres(conn) else sqlite).insert(worker_heartbeats)
    changing = {k: v for k, v in values.items() if k not in ("worker_id", "started_at")}
    conn.execute(
        insert.values(**values).on_conflict_do_update(index_elements=[_B.worker_id], set_=changing)
    )


def mark_stopped(conn: Connection, worker_id: str, now: datetime) -> None:
    """Record a worker's orderly stop (its row stays, for operators)."""
    conn.execute(
        sa.update(worker_heartbeats).where(_B.worker_id == worker_id).values(stopped_at=now)
    )


def heartbeats(conn: Connection, *, host: str | None = None) -> list[dict[str, Any]]:
    """Heartbeat rows (of ``host`` only, if given), most recent beat first."""
    query = sa.select(worker_heartbeats).order_by(_B.beat_at.desc())
    if host is not None:
        query = query.where(_B.host == host)
    return [_row(r) for r in conn.execute(query).mappings()]


def due_backlog(conn: Connection, now: datetime, *, older_than: datetime | None = None) -> int:
    """Pending events due by ``now`` (or due since before ``older_than``: work left waiting)."""
    due_by = now if older_than is None else min(now, older_than)
    query = sa.select(sa.func.count()).where(
        _W.status == EventStatus.PENDING, _W.fires_at <= due_by
    )
    return int(conn.execute(query).scalar_one())


def _row(row: Any) -> dict[str, Any]:
    data = dict(row)
    for key in ("started_at", "beat_at", "progress_at"):
        data[key] = as_utc(data[key])
    data["stopped_at"] = as_utc_or_none(data["stopped_at"])
    data["info"] = dict(data["info"] or {})
    return data


__all__ = ["DUE_BACKLOG_SQL", "beat", "due_backlog", "heartbeats", "mark_stopped"]
