"""Operator queries on ``worker_events`` and ``action_outbox``: filters, listing, replay, discard
and statistics. The worker loop never calls these; :mod:`pystator.services.admin` does."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from pystator.fsm_core.clock import as_utc
from pystator.fsm_core.records import EntityKey, EventStatus
from pystator.stores.sql.locking import wait_for_entity
from pystator.stores.sql.rows import (
    DISCARDABLE,
    REPLAYABLE,
    EventRow,
    OutboxStatus,
    event_from_row,
)
from pystator.stores.sql.schema import (
    action_outbox,
    worker_events,
    worker_heartbeats,
    worker_timers,
)

_W = worker_events.c
_O = action_outbox.c
_T = worker_timers.c
_B = worker_heartbeats.c


@dataclass(frozen=True, slots=True, kw_only=True)
class EventFilter:
    """Which events an operator command applies to (all fields optional, combined with AND)."""

    ids: tuple[int, ...] = ()
    status: str | None = None
    machine: str | None = None
    entity_id: str | None = None
    trigger: str | None = None
    origin: str | None = None
    idempotency_key: str | None = None
    error: str | None = None  # a substring of any attempt's error (case-insensitive)
    created_after: datetime | None = None
    created_before: datetime | None = None

    def is_empty(self) -> bool:
        """True when the filter selects every event."""
        return not self.where()

    def error_matches(self, errors: sa.ColumnElement[Any]) -> sa.ColumnElement[bool]:
        """``errors`` (a JSON column) contains the error substring, in any case."""
        pattern = "%" + _escape_like(self.error or "") + "%"
        return sa.cast(errors, sa.Text).ilike(pattern, escape="\\")

    def where(self, *, error: bool = True) -> list[sa.ColumnElement[bool]]:
        """The SQL conditions of this filter (values are bound parameters); ``error=False``
        leaves the error substring out (see :func:`list_events`)."""
        conditions: list[sa.ColumnElement[bool]] = []
        if self.ids:
            conditions.append(_W.id.in_(list(self.ids)))
        for column, value in (
            (_W.status, self.status),
            (_W.machine, self.machine),
            (_W.entity_id, self.entity_id),
            (_W.trigger, self.trigger),
            (_W.origin, self.origin),
            (_W.idempotency_key, self.idempotency_key),
        ):
            if value is not None:
                conditions.append(column == value)
        if self.error and error:
            conditions.append(self.error_matches(_W.errors))
        if self.created_after is not None:
            conditions.append(_W.created_at >= self.created_after)
        if self.created_before is not None:
            conditions.append(_W.created_at < self.created_before)
        return conditions


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _capped(
    conditions: list[sa.ColumnElement[bool]], limit: int | None
) -> list[sa.ColumnElement[bool]]:
    """``conditions``, narrowed to the ``limit`` oldest matching events when a limit is given."""
    if limit is None:
        return conditions
    first = sa.select(_W.id).where(*conditions).order_by(_W.id).limit(limit)
    return [*conditions, _W.id.in_(first.scalar_subquery())]


def get_event(conn: Connection, event_id: int) -> EventRow | None:
    """One event by id."""
    row = conn.execute(sa.select(worker_events).where(_W.id == event_id)).mappings().first()
    return None if row is None else event_from_row(row)


def list_events(
    conn: Connection,
    where: EventFilter,
    *,
    limit: int = 50,
    before_id: int | None = None,
    after_id: int | None = None,
) -> list[EventRow]:
    """Events matching ``where``, newest first; with ``before_id``, only older ones than that
    (keyset pagination: pass the last id of a page to get the next); with ``after_id``, the
    oldest ones newer than that, oldest first (the page before)."""
    conditions = where.where(error=False)
    if before_id is not None:
        conditions.append(_W.id < before_id)
    if after_id is not None:
        conditions.append(_W.id > after_id)
        rows = conn.execute(
            sa.select(worker_events).where(*conditions).order_by(_W.id).limit(limit)
            if not where.error
            else sa.select(worker_events)
            .where(*conditions, where.error_matches(_W.errors))
            .order_by(_W.id)
            .limit(limit)
        ).mappings()
        return [event_from_row(r) for r in rows]
    query = sa.select(worker_events).where(*conditions).order_by(_W.id.desc())
    if where.error:
        # The planner takes a substring match for very selective and would fetch every row of
        # the other conditions, then sort; behind this fence (OFFSET 0) it walks them newest
        # first and stops at the page's end.
        fenced = query.offset(0).subquery()
        query = (
            sa.select(fenced)
            .where(where.error_matches(fenced.c.errors))
            .order_by(fenced.c.id.desc())
        )
    return [event_from_row(r) for r in conn.execute(query.limit(limit)).mappings()]


def replay(
    conn: Connection, where: EventFilter, now: datetime, *, limit: int | None = None
) -> tuple[list[EntityKey], int]:
    """Send finished events matching ``where`` back to ``pending`` with fresh attempts (only the
    ``limit`` oldest of them, when given).

    Their past errors are kept. Returns the entities to nudge and how many events changed.
    """
    conditions = _capped([*where.where(), _W.status.in_(REPLAYABLE)], limit)
    keys = conn.execute(sa.select(_W.machine, _W.entity_id).where(*conditions).distinct()).all()
    result = conn.execute(
        sa.update(worker_events)
        .where(*conditions)
        .values(
            status=EventStatus.PENDING,
            attempts=0,
            fires_at=now,
            outcome=None,
            completed_at=None,
            updated_at=now,
        )
    )
    return [(k[0], k[1]) for k in keys], int(result.rowcount)


def discard(
    conn: Connection, where: EventFilter, now: datetime, *, limit: int | None = None
) -> int:
    """Mark pending, dead or rejected events matching ``where`` as ``discarded`` (only the
    ``limit`` oldest of them, when given).

    Each affected entity's lock is taken first (waiting for a worker that holds it), so an
    event a worker is applying right now ends applied or discarded, never both.
    """
    conditions = _capped([*where.where(), _W.status.in_(DISCARDABLE)], limit)
    keys = conn.execute(
        sa.select(_W.machine, _W.entity_id)
        .where(*conditions)
        .distinct()
        .order_by(_W.machine, _W.entity_id)
    ).all()
    for machine, entity_id in keys:
        wait_for_entity(conn, machine, entity_id)
    result = conn.execute(
        sa.update(worker_events)
        .where(*conditions)
        .values(status=EventStatus.DISCARDED, updated_at=now, completed_at=now)
    )
    return int(result.rowcount)


def count_replayable(conn: Connection, where: EventFilter) -> int:
    """How many events :func:`replay` would send back to pending."""
    return _count(conn, [*where.where(), _W.status.in_(REPLAYABLE)])


def count_discardable(conn: Connection, where: EventFilter) -> int:
    """How many events :func:`discard` would discard."""
    return _count(conn, [*where.where(), _W.status.in_(DISCARDABLE)])


def _count(conn: Connection, conditions: list[sa.ColumnElement[bool]]) -> int:
    query = sa.select(sa.func.count()).select_from(worker_events).where(*conditions)
    return int(conn.execute(query).scalar_one())


def stats(conn: Connection) -> dict[str, Any]:
    """Counts for operators and the dashboard: events by status, retries, duplicates, outbox."""
    by_status = {str(status): 0 for status in EventStatus}
    for status, count in conn.execute(
        sa.select(_W.status, sa.func.count()).group_by(_W.status)
    ).all():
        by_status[str(status)] = int(count)
    totals = conn.execute(
        sa.select(
            sa.func.coalesce(sa.func.sum(_W.duplicate_count), 0),
            sa.func.count().filter(_W.attempts > 1),
            sa.func.count().filter(sa.and_(_W.status == EventStatus.PENDING, _W.attempts > 0)),
        )
    ).one()
    outbox = {str(status): 0 for status in OutboxStatus}
    for status, count in conn.execute(
        sa.select(_O.status, sa.func.count()).group_by(_O.status)
    ).all():
        outbox[str(status)] = int(count)
    return {
        "events": by_status,
        "duplicates": int(totals[0]),
        "retried": int(totals[1]),
        "retrying": int(totals[2]),
        "outbox": outbox,
    }


@dataclass(frozen=True, slots=True, kw_only=True)
class DeadGroup:
    """Dead events of one machine sharing their last error message."""

    machine: str
    message: str
    count: int
    first_id: int
    last_id: int
    last_at: datetime


def dead_groups(conn: Connection, *, limit: int) -> list[DeadGroup]:
    """Dead events grouped by machine and last error message, the largest groups first (reads
    the dead rows only, through the ``(status, id)`` index)."""
    if conn.dialect.name == "postgresql":
        message: sa.ColumnElement[Any] = sa.func.coalesce(
            _W.errors.op("->")(-1).op("->>")("message"), ""
        )
    else:
        message = sa.func.coalesce(sa.func.json_extract(_W.errors, "$[#-1].message"), "")
    message = message.label("message")
    query = (
        sa.select(
            _W.machine,
            message,
            sa.func.count().label("n"),
            sa.func.min(_W.id),
            sa.func.max(_W.id),
            sa.func.max(_W.updated_at),
        )
        .where(_W.status == EventStatus.DEAD)
        .group_by(_W.machine, message)
        .order_by(sa.desc("n"), _W.machine)
        .limit(limit)
    )
    return [
        DeadGroup(
            machine=str(machine),
            message=str(text),
            count=int(count),
            first_id=int(first),
            last_id=int(last),
            last_at=as_utc(at),
        )
        for machine, text, count, first, last, at in conn.execute(query).all()
    ]


@dataclass(frozen=True, slots=True, kw_only=True)
class FleetGauges:
    """The fleet's state right now, from queries that stay cheap on a large table (they read
    the partial indexes on pending rows, or small tables)."""

    backlog: dict[tuple[str, str], int]  # (machine, "due" | "future") -> pending events
    oldest_due_seconds: float  # age of the oldest due pending event (0 when none)
    dead_events: dict[str, int]  # machine -> dead events
    outbox: dict[str, int]  # pending | dead -> actions
    armed_timers: int
    workers_alive: int


def fleet_gauges(conn: Connection, now: datetime, *, alive_since: datetime) -> FleetGauges:
    """:class:`FleetGauges` at ``now``; workers count as alive with a heartbeat since
    ``alive_since``."""
    due = _W.fires_at <= now
    backlog: dict[tuple[str, str], int] = {}
    for machine, is_due, count in conn.execute(
        sa.select(_W.machine, due, sa.func.count())
        .where(_W.status == EventStatus.PENDING)
        .group_by(_W.machine, due)
    ).all():
        backlog[(str(machine), "due" if is_due else "future")] = int(count)
    oldest = conn.execute(
        sa.select(sa.func.min(_W.fires_at)).where(_W.status == EventStatus.PENDING, due)
    ).scalar()
    dead = {
        str(machine): int(count)
        for machine, count in conn.execute(
            sa.select(_W.machine, sa.func.count())
            .where(_W.status == EventStatus.DEAD)
            .group_by(_W.machine)
        ).all()
    }
    outbox = {str(s): 0 for s in (OutboxStatus.PENDING, OutboxStatus.DEAD)}
    for status, count in conn.execute(
        sa.select(_O.status, sa.func.count())
        .where(_O.status.in_([OutboxStatus.PENDING, OutboxStatus.DEAD]))
        .group_by(_O.status)
    ).all():
        outbox[str(status)] = int(count)
    timers = conn.execute(
        sa.select(sa.func.count()).select_from(worker_timers).where(_T.dead_at.is_(None))
    ).scalar_one()
    alive = conn.execute(
        sa.select(sa.func.count())
        .select_from(worker_heartbeats)
        .where(_B.stopped_at.is_(None), _B.beat_at >= alive_since, _B.kind != "child")
    ).scalar_one()
    return FleetGauges(
        backlog=backlog,
        oldest_due_seconds=0.0 if oldest is None else (now - as_utc(oldest)).total_seconds(),
        dead_events=dead,
        outbox=outbox,
        armed_timers=int(timers),
        workers_alive=int(alive),
    )


__all__ = [
    "DeadGroup",
    "EventFilter",
    "FleetGauges",
    "count_discardable",
    "count_replayable",
    "dead_groups",
    "discard",
    "fleet_gauges",
    "get_event",
    "list_events",
    "replay",
    "stats",
]
