"""Every query on ``action_outbox``: actions to run after commit, at least once, in order.

A row's id is the action's dedup token. Rows are inserted by the transaction that applied their
event, run right after commit by that worker, and swept by the relay if that worker died (a row
becomes claimable only after a lease).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from pystator.stores.sql.db_clock import FLEET_NOW
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
                "traceparent": a.traceparent,
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
    query = _claimable(now).limit(limit)
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


def claimable_ids(conn: Connection, now: datetime, limit: int) -> list[int]:
    """Ids of up to ``limit`` claimable actions (read only: for claiming them one by one)."""
    query = sa.select(_O.id).where(*_claimable_where(now)).order_by(_O.id).limit(limit)
    return [int(i) for i in conn.execute(query).scalars()]


def claim_ids(
    conn: Connection, ids: Sequence[int], now: datetime, *, lease: timedelta
) -> list[OutboxRow]:
    """:func:`claim_outbox` for the named rows that are still claimable."""
    query = (
        sa.update(action_outbox)
        .where(_O.id.in_(list(ids)), *_claimable_where(now))
        .values(available_at=now + lease)
        .returning(*action_outbox.c)
    )
    return sorted((outbox_from_row(r) for r in conn.execute(query).mappings()), key=_by_id)


def _claimable_where(now: datetime) -> list[sa.ColumnElement[bool]]:
    return [_O.status == OutboxStatus.PENDING, _O.available_at <= now]


def _claimable(now: datetime) -> sa.Select[Any]:
    return sa.select(action_outbox).where(*_claimable_where(now)).order_by(_O.id)


def _by_id(row: OutboxRow) -> int:
    return row.id


def complete_outbox(conn: Connection, ids: Sequence[int], now: datetime | None) -> None:
    """Mark actions done (``now`` None: stamped with the database's clock)."""
    if ids:
        conn.execute(
            sa.update(action_outbox)
            .where(_O.id.in_(list(ids)), _O.status == OutboxStatus.PENDING)
            .values(status=OutboxStatus.DONE, attempts=_O.attempts + 1, completed_at=FLEET_NOW),
            {"now": now},
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


@dataclass(frozen=True, slots=True, kw_only=True)
class ActionFilter:
    """Which outbox rows an operator command applies to (combined with AND)."""

    ids: tuple[int, ...] = ()
    status: str | None = None
    machine: str | None = None
    entity_id: str | None = None
    action: str | None = None
    event_id: int | None = None

    def where(self) -> list[sa.ColumnElement[bool]]:
        """The SQL conditions of this filter."""
        conditions: list[sa.ColumnElement[bool]] = []
        if self.ids:
            conditions.append(_O.id.in_(list(self.ids)))
        for column, value in (
            (_O.status, self.status),
            (_O.machine, self.machine),
            (_O.entity_id, self.entity_id),
            (_O.action, self.action),
            (_O.event_id, self.event_id),
        ):
            if value is not None:
                conditions.append(column == value)
        return conditions

    def is_empty(self) -> bool:
        """True when the filter selects everything."""
        return not self.where()


def list_outbox(
    conn: Connection,
    where: ActionFilter | None = None,
    *,
    status: str | None = None,
    event_id: int | None = None,
    limit: int = 100,
    before_id: int | None = None,
) -> list[OutboxRow]:
    """Outbox rows matching ``where`` (or ``status`` / ``event_id``), newest first; with
    ``before_id``, only older ones (keyset pagination)."""
    where = where or ActionFilter(status=status, event_id=event_id)
    conditions = where.where()
    if before_id is not None:
        conditions.append(_O.id < before_id)
    query = sa.select(action_outbox).where(*conditions).order_by(_O.id.desc()).limit(limit)
    return [outbox_from_row(r) for r in conn.execute(query).mappings()]


def count_outbox(conn: Connection, where: ActionFilter) -> int:
    """How many outbox rows match ``where``."""
    query = sa.select(sa.func.count()).select_from(action_outbox).where(*where.where())
    return int(conn.execute(query).scalar_one())


def _capped(
    conditions: list[sa.ColumnElement[bool]], limit: int | None
) -> list[sa.ColumnElement[bool]]:
    if limit is None:
        return conditions
    first = sa.select(_O.id).where(*conditions).order_by(_O.id).limit(limit)
    return [*conditions, _O.id.in_(first.scalar_subquery())]


def replay_outbox(
    conn: Connection, where: ActionFilter, now: datetime, *, limit: int | None = None
) -> int:
    """Send dead (or discarded) actions matching ``where`` back to pending, due now, with fresh
    attempts (their past errors kept; only the ``limit`` oldest, when given); returns how
    many."""
    conditions = [*where.where(), _O.status.in_([OutboxStatus.DEAD, OutboxStatus.DISCARDED])]
    result = conn.execute(
        sa.update(action_outbox)
        .where(*_capped(conditions, limit))
        .values(status=OutboxStatus.PENDING, attempts=0, available_at=now, completed_at=None)
    )
    return int(result.rowcount)


def discard_outbox(
    conn: Connection, where: ActionFilter, now: datetime, *, limit: int | None = None
) -> int:
    """Give up on pending or dead actions matching ``where`` (the ``limit`` oldest, when
    given); returns how many."""
    conditions = [*where.where(), _O.status.in_([OutboxStatus.PENDING, OutboxStatus.DEAD])]
    result = conn.execute(
        sa.update(action_outbox)
        .where(*_capped(conditions, limit))
        .values(status=OutboxStatus.DISCARDED, completed_at=now)
    )
    return int(result.rowcount)


__all__ = [
    "ActionFilter",
    "claim_ids",
    "claim_outbox",
    "claimable_ids",
    "complete_outbox",
    "count_outbox",
    "discard_outbox",
    "fail_outbox",
    "insert_outbox",
    "list_outbox",
    "load_outbox",
    "replay_outbox",
]
