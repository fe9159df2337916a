"""Every query on ``transition_history``: one row per committed entity version.

Rows are appended in the transaction that writes the entity (the unique ``(machine, entity_id,
version)`` key refuses a second row for one version) and never updated.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, RowMapping

from pystator.fsm_core.clock import as_utc, utc_now
from pystator.fsm_core.records import HistoryEntry
from pystator.stores.sql import feed_queries
from pystator.stores.sql.feed_queries import FeedPosition
from pystator.stores.sql.schema import transition_history

_H = transition_history.c


def history_values(entry: HistoryEntry) -> dict[str, Any]:
    """The ``transition_history`` row for ``entry``."""
    return {
        "machine": entry.machine,
        "entity_id": entry.entity_id,
        **entry.transition_fields(),
        "machine_version": entry.machine_version,
        "guard_context": None if entry.guard_context is None else dict(entry.guard_context),
    }


_INSERT = sa.insert(transition_history)


def insert_history(conn: Connection, entries: Sequence[HistoryEntry]) -> None:
    """Append history rows (one executemany). A duplicate version violates the unique key."""
    if entries:
        conn.execute(_INSERT, [history_values(e) for e in entries])


def history_from_row(row: RowMapping) -> HistoryEntry:
    """Build a :class:`HistoryEntry` from a ``transition_history`` row mapping."""
    return HistoryEntry(
        machine=row["machine"],
        entity_id=row["entity_id"],
        version=int(row["version"]),
        source_state=row["source_state"],
        target_state=row["target_state"],
        trigger=row["trigger"],
        event_id=row["event_id"],
        origin=row["origin"],
        actions=tuple(row["actions"] or ()),
        payload=row["payload"],
        created_at=as_utc(row["created_at"]) if row["created_at"] else utc_now(),
        machine_version=row["machine_version"],
        guard_context=row.get("guard_context"),
    )


def load_history(conn: Connection, machine: str, entity_id: str) -> list[HistoryEntry]:
    """Every history row of one entity, oldest version first."""
    query = (
        sa.select(transition_history)
        .where(_H.machine == machine, _H.entity_id == entity_id)
        .order_by(_H.version)
    )
    return [history_from_row(row) for row in conn.execute(query).mappings()]


def page_history(
    conn: Connection,
    machine: str,
    entity_id: str,
    *,
    limit: int,
    before_version: int | None = None,
) -> list[HistoryEntry]:
    """One entity's history rows, newest version first, older than ``before_version``."""
    conditions = [_H.machine == machine, _H.entity_id == entity_id]
    if before_version is not None:
        conditions.append(_H.version < before_version)
    query = (
        sa.select(transition_history).where(*conditions).order_by(_H.version.desc()).limit(limit)
    )
    return [history_from_row(row) for row in conn.execute(query).mappings()]


def feed(
    conn: Connection,
    *,
    limit: int,
    after_id: int | None = None,
    machine: str | None = None,
    entity_id: str | None = None,
) -> list[tuple[int, HistoryEntry]]:
    """The transition feed: ``(row id, entry)`` in commit-safe order after row ``after_id`` (a
    consumer saves the last id it read and passes it back; see
    :mod:`pystator.stores.sql.feed_queries`)."""
    position, unknown = feed_queries.resolve(conn, transition_history, after_id)
    page = feed_page(
        conn, limit=limit, after=position, after_id=unknown, machine=machine, entity_id=entity_id
    )
    return [(p.id, entry) for p, entry in page]


def feed_page(
    conn: Connection,
    *,
    limit: int,
    after: FeedPosition | None = None,
    after_id: int | None = None,
    machine: str | None = None,
    entity_id: str | None = None,
) -> list[tuple[FeedPosition, HistoryEntry]]:
    """One page of the transition feed after position ``after`` (or row id ``after_id`` when
    its row is gone), with each row's position (what a stream keeps between pages)."""
    conditions = feed_queries.feed_conditions(
        conn, transition_history, after=after, after_id=after_id
    )
    if machine is not None:
        conditions.append(_H.machine == machine)
    if entity_id is not None:
        conditions.append(_H.entity_id == entity_id)
    query = (
        sa.select(transition_history)
        .where(*conditions)
        .order_by(*feed_queries.feed_order(transition_history))
        .limit(limit)
    )
    return [
        (FeedPosition(int(row["commit_xid"]), int(row["id"])), history_from_row(row))
        for row in conn.execute(query).mappings()
    ]


__all__ = [
    "feed",
    "feed_page",
    "history_from_row",
    "history_values",
    "insert_history",
    "load_history",
    "page_history",
]
