"""The live feeds the API streams (SSE): committed transitions and configuration changes.

Both read append-only tables in commit-safe order (:mod:`pystator.stores.sql.feed_queries`): a
consumer that saves the id of the last item it read and passes it back (``Last-Event-ID``) gets
every later item exactly once, in order, even when transactions commit out of id order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from pystator.services.admin import history_dict
from pystator.stores.sql import audit_queries, feed_queries, history_queries
from pystator.stores.sql.engine import translate_errors
from pystator.stores.sql.feed_queries import FeedPosition
from pystator.stores.sql.schema import audit_log, transition_history


@dataclass(frozen=True, slots=True)
class FeedItem:
    """One item of a feed: its id (the SSE event id), its place, its SSE event name, its data."""

    id: int
    position: FeedPosition
    event: str
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class FeedCursor:
    """Where a reader is: a position once known; before that, the id it resumes after (a
    position is looked up from it); neither: from the start."""

    position: FeedPosition | None = None
    after_id: int | None = None


#: ``page(cursor, limit) -> items``: one page of a feed.
FeedPage = Callable[[FeedCursor, int], list[FeedItem]]


def transitions_page(
    engine: Engine,
    cursor: FeedCursor,
    limit: int,
    *,
    machine: str | None = None,
    entity_id: str | None = None,
) -> list[FeedItem]:
    """The next committed transitions after ``cursor`` (event name ``transition``)."""
    with translate_errors("transitions"), engine.connect() as conn:
        position, after_id = _resolve(conn, transition_history, cursor)
        rows = history_queries.feed_page(
            conn,
            limit=limit,
            after=position,
            after_id=after_id,
            machine=machine,
            entity_id=entity_id,
        )
    return [
        FeedItem(p.id, p, "transition", {"id": p.id, **history_dict(entry)}) for p, entry in rows
    ]


def config_changes_page(engine: Engine, cursor: FeedCursor, limit: int) -> list[FeedItem]:
    """The next configuration changes after ``cursor``: machines published or retired, API
    keys created or revoked, webhooks created, changed or deleted — through any door (the
    HTTP API, the dashboard, the command line, Python), from the audit log's rows that carry a
    kind (:class:`~pystator.services.audit.ChangeKind`, written with the change)."""
    with translate_errors("audit log"), engine.connect() as conn:
        position, after_id = _resolve(conn, audit_log, cursor)
        rows = audit_queries.config_feed(conn, limit=limit, after=position, after_id=after_id)
    items = []
    for p, record in rows:
        kind = record.kind or OTHER_CHANGE
        data = {
            "id": record.id,
            "kind": kind,
            "target": record.target,
            "principal": record.principal,
            "method": record.method,
            "route": record.route,
            "at": record.at.isoformat(),
        }
        items.append(FeedItem(p.id, p, kind, data))
    return items


def newest_position(engine: Engine, table_name: str) -> FeedPosition | None:
    """The position of the newest readable row of a feed's table (where a tail starts)."""
    table = {"transitions": transition_history, "config": audit_log}[table_name]
    with translate_errors(table.name), engine.connect() as conn:
        query = (
            sa.select(table.c.commit_xid, table.c.id)
            .where(*feed_queries.feed_conditions(conn, table))
            .order_by(table.c.commit_xid.desc(), table.c.id.desc())
            .limit(1)
        )
        row = conn.execute(query).first()
    return FeedPosition(int(row[0]), int(row[1])) if row is not None else None


#: The event name of a feed row without a kind (never written; the feed reads only rows with one).
OTHER_CHANGE = "config.changed"


def _resolve(
    conn: Connection, table: sa.Table, cursor: FeedCursor
) -> tuple[FeedPosition | None, int | None]:
    if cursor.position is not None:
        return cursor.position, None
    return feed_queries.resolve(conn, table, cursor.after_id)


__all__ = [
    "OTHER_CHANGE",
    "FeedCursor",
    "FeedItem",
    "FeedPage",
    "config_changes_page",
    "newest_position",
    "transitions_page",
]
