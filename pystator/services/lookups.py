"""Read-only lookups operators investigate with (the dashboard's pages; the API may add them):
event rates per minute, dead letters grouped by error, idempotency keys and their repeats and
conflicts, entity search and records, entities per state, an event's neighbours.

Each reads an index or a small table — never a count over the whole event table.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import Engine

from pystator.fleet.rollups import ROLLUP_OUTCOMES
from pystator.fsm_core.clock import Clock, utc_now
from pystator.fsm_core.records import EntityKey, EntityRecord
from pystator.stores.sql import (
    admin_queries,
    entity_queries,
    idempotency_queries,
    rollup_queries,
)
from pystator.stores.sql.admin_queries import DeadGroup, EventFilter
from pystator.stores.sql.engine import translate_errors
from pystator.stores.sql.rows import EventRow


@dataclass(frozen=True, slots=True, kw_only=True)
class EventRates:
    """Events per minute and outcome over a window (every minute present, zeros included)."""

    minutes: tuple[datetime, ...]
    series: dict[str, list[int]]  # outcome -> one count per minute
    totals: dict[tuple[str, str], int]  # (machine, outcome) -> count over the window


def event_rates(
    engine: Engine,
    *,
    minutes: int,
    machine: str | None = None,
    clock: Clock = utc_now,
) -> EventRates:
    """Applied, rejected, stale, retried and dead events per minute over the last ``minutes``
    minutes (from ``event_rollups``: what the workers counted; they outlive the events)."""
    now = clock()
    since = (now - timedelta(minutes=minutes - 1)).replace(second=0, microsecond=0)
    slots = tuple(since + timedelta(minutes=i) for i in range(minutes))
    index = {minute: i for i, minute in enumerate(slots)}
    series = {outcome: [0] * minutes for outcome in ROLLUP_OUTCOMES.values()}
    with translate_errors("stats"), engine.connect() as conn:
        for minute, outcome, count in rollup_queries.per_minute(conn, since, machine=machine):
            position = index.get(minute)
            if position is not None and outcome in series:
                series[outcome][position] += count
        totals = rollup_queries.totals(conn, since)
    if machine is not None:
        totals = {key: n for key, n in totals.items() if key[0] == machine}
    return EventRates(minutes=slots, series=series, totals=totals)


def dead_letter_groups(engine: Engine, *, limit: int = 100) -> list[DeadGroup]:
    """Dead events grouped by machine and last error message, the largest groups first."""
    with translate_errors("events"), engine.connect() as conn:
        return admin_queries.dead_groups(conn, limit=limit)


def events_with_key(engine: Engine, key: str, machines: Sequence[str]) -> list[EventRow]:
    """The events stored under idempotency ``key`` for any of ``machines``."""
    with translate_errors("events"), engine.connect() as conn:
        return idempotency_queries.events_with_key(conn, key, machines)


def recent_duplicates(engine: Engine, *, limit: int = 50) -> list[EventRow]:
    """Events whose key was submitted again with the same content, the latest repeat first."""
    with translate_errors("events"), engine.connect() as conn:
        return idempotency_queries.recent_duplicates(conn, limit=limit)


def recent_conflicts(
    engine: Engine, *, limit: int = 50, key: str | None = None
) -> list[dict[str, Any]]:
    """Refused submissions that reused a key with different content, newest first."""
    with translate_errors("events"), engine.connect() as conn:
        return idempotency_queries.recent_conflicts(conn, limit=limit, key=key)


def search_entities(
    engine: Engine, *, machine: str | None, prefix: str, limit: int = 50
) -> list[EntityRecord]:
    """Entities whose id starts with ``prefix``."""
    with translate_errors("entities"), engine.connect() as conn:
        return entity_queries.search(conn, machine=machine, prefix=prefix, limit=limit)


def entity_records(engine: Engine, keys: Sequence[EntityKey]) -> dict[EntityKey, EntityRecord]:
    """The stored records of ``(machine, entity_id)`` keys, in one query (missing keys absent)."""
    with translate_errors("entities"), engine.connect() as conn:
        return entity_queries.load_records(conn, keys)


def state_counts(engine: Engine, machine: str) -> dict[str, int]:
    """Entities of ``machine`` per state."""
    with translate_errors("entities"), engine.connect() as conn:
        return entity_queries.state_counts(conn, machine)


def neighbours(engine: Engine, event: EventRow, *, each_side: int = 5) -> list[EventRow]:
    """The entity's events around ``event`` (up to ``each_side`` older and newer), oldest
    first, ``event`` included."""
    same = EventFilter(machine=event.machine, entity_id=event.entity_id)
    with translate_errors("events"), engine.connect() as conn:
        older = admin_queries.list_events(conn, same, limit=each_side, before_id=event.id)
        newer = admin_queries.list_events(conn, same, limit=each_side, after_id=event.id)
    return [*reversed(older), event, *newer]


__all__ = [
    "EventRates",
    "dead_letter_groups",
    "entity_records",
    "event_rates",
    "events_with_key",
    "neighbours",
    "recent_conflicts",
    "recent_duplicates",
    "search_entities",
    "state_counts",
]
