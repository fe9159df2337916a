"""Queries of the HTTP entity routes that no other job runs: the work still waiting for one
entity, and purging an entity (its state row, history and armed timers).

Callers run them inside their own transaction (see :func:`pystator.stores.sql.connections.transaction`).
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from pystator.fsm_core.records import EventStatus
from pystator.stores.sql.schema import (
    action_outbox,
    entity_states,
    transition_history,
    worker_events,
    worker_timers,
)


def pending_work(conn: Connection, machine: str, entity_id: str) -> dict[str, int]:
    """How many pending events and pending actions the entity still has."""
    events = conn.execute(
        sa.select(sa.func.count())
        .select_from(worker_events)
        .where(
            worker_events.c.machine == machine,
            worker_events.c.entity_id == entity_id,
            worker_events.c.status == EventStatus.PENDING.value,
        )
    ).scalar_one()
    actions = conn.execute(
        sa.select(sa.func.count())
        .select_from(action_outbox)
        .where(
            action_outbox.c.machine == machine,
            action_outbox.c.entity_id == entity_id,
            action_outbox.c.status == "pending",
        )
    ).scalar_one()
    return {"pending_events": int(events), "pending_actions": int(actions)}


def purge(conn: Connection, machine: str, entity_id: str) -> dict[str, int]:
    """Delete the entity's state row, its history rows and its armed timers; the counts."""
    deleted: dict[str, int] = {}
    for name, table in (
        ("entity", entity_states),
        ("history", transition_history),
        ("timers", worker_timers),
    ):
        result = conn.execute(
            sa.delete(table).where(table.c.machine == machine, table.c.entity_id == entity_id)
        )
        deleted[name] = int(result.rowcount or 0)
    return deleted


__all__ = ["pending_work", "purge"]
