"""Read-only aggregates of the observability routes over ``entity_states``,
``transition_history`` and ``worker_events``: entities per machine and state, transitions and
edges in a time window, and a newest-first page of the transition history."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from pystator.fsm_core.records import HistoryEntry
from pystator.stores.sql.history_queries import history_from_row
from pystator.stores.sql.schema import entity_states, transition_history, worker_events

_E = entity_states.c
_H = transition_history.c
_W = worker_events.c


def entities_by_state(conn: Connection, machine: str | None = None) -> list[tuple[str, str, int]]:
    """``(machine, state, entities)`` rows, by machine then state."""
    query = (
        sa.select(_E.machine, _E.state, sa.func.count())
        .group_by(_E.machine, _E.state)
        .order_by(_E.machine, _E.state)
    )
    if machine is not None:
        query = query.where(_E.machine == machine)
    return [(str(m), str(s), int(n)) for m, s, n in conn.execute(query).all()]


def edges_since(
    conn: Connection, since: datetime, machine: str | None = None
) -> list[dict[str, Any]]:
    """Transitions committed at or after ``since`` per ``(machine, from, to, trigger)``, with
    the newest one's time; the most frequent first."""
    query = (
        sa.select(
            _H.machine,
            _H.source_state,
            _H.target_state,
            _H.trigger,
            sa.func.count().label("taken"),
            sa.func.max(_H.created_at).label("last_at"),
        )
        .where(_H.created_at >= since)
        .group_by(_H.machine, _H.source_state, _H.target_state, _H.trigger)
        .order_by(sa.func.count().desc(), _H.machine, _H.target_state)
    )
    if machine is not None:
        query = query.where(_H.machine == machine)
    return [
        {
            "machine": row.machine,
            "from": row.source_state,
            "to": row.target_state,
            "trigger": row.trigger,
            "count": int(row.taken),
            "last_at": row.last_at,
        }
        for row in conn.execute(query)
    ]


def transitions_since(conn: Connection, since: datetime) -> int:
    """How many transitions committed at or after ``since``."""
    query = sa.select(sa.func.count()).select_from(transition_history)
    return int(conn.execute(query.where(_H.created_at >= since)).scalar_one())


def events_since(conn: Connection, since: datetime) -> dict[str, int]:
    """Events submitted at or after ``since``, counted by their status now."""
    query = sa.select(_W.status, sa.func.count()).where(_W.created_at >= since).group_by(_W.status)
    return {str(status): int(n) for status, n in conn.execute(query).all()}


def recent_transitions(
    conn: Connection,
    *,
    limit: int,
    before_id: int | None = None,
    machine: str | None = None,
    entity_id: str | None = None,
    trigger: str | None = None,
) -> list[tuple[int, HistoryEntry]]:
    """Newest-first ``(row id, entry)`` pairs older than ``before_id``."""
    conditions: list[sa.ColumnElement[bool]] = []
    if before_id is not None:
        conditions.append(_H.id < before_id)
    if machine is not None:
        conditions.append(_H.machine == machine)
    if entity_id is not None:
        conditions.append(_H.entity_id == entity_id)
    if trigger is not None:
        conditions.append(_H.trigger == trigger)
    query = sa.select(transition_history).where(*conditions).order_by(_H.id.desc()).limit(limit)
    return [(int(row["id"]), history_from_row(row)) for row in conn.execute(query).mappings()]


__all__ = [
    "edges_since",
    "entities_by_state",
    "events_since",
    "recent_transitions",
    "transitions_since",
]
