"""The commit-safe order of the append-only feeds (``transition_history``, ``audit_log``).

**Why ids alone are not a cursor.** On PostgreSQL two transactions draw ids from one sequence and
commit in either order: a reader can see id 11 committed while id 10 is still in flight, save 11
as its cursor, and never read 10. SQLite has one writer at a time, so there ids are in commit
order.

**The choice: a safe horizon in transaction order.** Each row stores ``commit_xid``, the id of
the transaction that wrote it (``pg_current_xact_id()``, a 64-bit counter that never wraps; 0 on
SQLite). A feed reads in ``(commit_xid, id)`` order and, on PostgreSQL, only rows below a
horizon: the oldest transaction that was running when the reading statement's snapshot was
taken (``pg_snapshot_xip(pg_current_snapshot())``, its ``xmax`` when none). Every transaction
below it had ended, and any transaction still to commit has a larger id, so its rows sort after
every row already read. A reader never skips a row, at the price of a delay: a write transaction
that stays open holds the horizon back (never longer than it stays open).

Transactions of other databases on the same server are left out of the horizon when
``pg_stat_activity`` shows them running there (they cannot write our tables); one whose database
cannot be told (no ``pg_read_all_stats``, a prepared transaction) still counts, which only ever
delays the feed. A transaction that ends between the snapshot and that look is still left out
correctly: only running transactions of *other* databases are removed from the snapshot's list.

The public cursor stays a row id: the position ``(commit_xid, id)`` of that row is looked up
(:func:`position_of`), so a consumer saves an integer.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from pystator.stores.sql.locking import is_postgres

#: The horizon, as a bigint (PostgreSQL 13+): the oldest transaction running when the statement's
#: snapshot was taken, leaving out those known to run in another database of the server (a
#: transaction whose database cannot be told is counted as ours); the snapshot's ``xmax`` when
#: none is running.
_HORIZON = sa.text(
    "(SELECT coalesce(min(x::text::bigint), "
    "pg_snapshot_xmax(pg_current_snapshot())::text::bigint) "
    "FROM pg_snapshot_xip(pg_current_snapshot()) AS x "
    "WHERE x::text::bigint % 4294967296 NOT IN ("
    "SELECT backend_xid::text::bigint FROM pg_stat_activity "
    "WHERE backend_xid IS NOT NULL AND datname IS NOT NULL "
    "AND datname <> current_database()))"
)


@dataclass(frozen=True, slots=True, order=True)
class FeedPosition:
    """A row's place in a feed: its writing transaction, then its id."""

    commit_xid: int
    id: int


def position_of(conn: Connection, table: sa.Table, row_id: int) -> FeedPosition | None:
    """The position of row ``row_id`` (None when there is no such row: pruned or never)."""
    row = conn.execute(
        sa.select(table.c.commit_xid, table.c.id).where(table.c.id == row_id)
    ).first()
    return FeedPosition(int(row[0]), int(row[1])) if row is not None else None


def feed_conditions(
    conn: Connection,
    table: sa.Table,
    *,
    after: FeedPosition | None = None,
    after_id: int | None = None,
) -> list[sa.ColumnElement[bool]]:
    """The conditions of a feed page: after ``after`` (or, when that row is unknown, after id
    ``after_id``), and below the safe horizon on PostgreSQL."""
    c = table.c
    conditions: list[sa.ColumnElement[bool]] = []
    if after is not None:
        conditions.append(sa.tuple_(c.commit_xid, c.id) > sa.tuple_(after.commit_xid, after.id))
    elif after_id is not None:
        conditions.append(c.id > after_id)
    if is_postgres(conn):
        conditions.append(c.commit_xid < _HORIZON)
    return conditions


def feed_order(table: sa.Table) -> tuple[sa.ColumnElement[object], ...]:
    """The feed's order (matches the ``ix_<table>_commit_xid_id`` index)."""
    return (table.c.commit_xid, table.c.id)


def resolve(
    conn: Connection, table: sa.Table, after_id: int | None
) -> tuple[FeedPosition | None, int | None]:
    """A cursor (a row id) as a position, or the id itself when the row is gone."""
    if after_id is None:
        return None, None
    position = position_of(conn, table, after_id)
    return position, None if position is not None else after_id


__all__ = ["FeedPosition", "feed_conditions", "feed_order", "position_of", "resolve"]
