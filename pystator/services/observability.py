"""Fleet observability over the tables: a summary of KPIs, a newest-first transition feed,
entities per state and the edges taken in a time window. Read only; "now" is the database's
clock (:func:`~pystator.stores.sql.db_clock.read_now`), so a window means the same on every host.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy.engine import Engine

from pystator.fsm_core.clock import Clock
from pystator.fsm_core.records import HistoryEntry
from pystator.stores.sql import admin_queries, observability_queries, stats_queries
from pystator.stores.sql.db_clock import read_now
from pystator.stores.sql.engine import translate_errors

#: The default window of the summary and the state metrics.
DEFAULT_WINDOW = timedelta(hours=1)


def summary(
    engine: Engine, *, window: timedelta = DEFAULT_WINDOW, clock: Clock | None = None
) -> dict[str, Any]:
    """Entities (all, by machine), transitions and submitted events within ``window``,
    events by status, the backlog and the outbox."""
    with translate_errors("observability"), engine.connect() as conn:
        now = read_now(conn, clock)
        since = now - window
        by_state = observability_queries.entities_by_state(conn)
        counts = admin_queries.stats(conn)
        data = {
            "at": now,
            "window_seconds": window.total_seconds(),
            "transitions_in_window": observability_queries.transitions_since(conn, since),
            "events_in_window": observability_queries.events_since(conn, since),
            "events": counts["events"],
            "outbox": counts["outbox"],
            "duplicates": counts["duplicates"],
            "backlog": stats_queries.backlog(conn, now),
        }
    by_machine: dict[str, int] = {}
    for machine, _state, n in by_state:
        by_machine[machine] = by_machine.get(machine, 0) + n
    data["entities"] = sum(by_machine.values())
    data["entities_by_machine"] = by_machine
    return data


def state_metrics(
    engine: Engine,
    *,
    machine: str | None = None,
    window: timedelta = DEFAULT_WINDOW,
    clock: Clock | None = None,
) -> dict[str, Any]:
    """Entities per ``(machine, state)`` now, and per edge ``(from, to, trigger)`` how many
    transitions took it within ``window`` (entries into each state summed from those)."""
    with translate_errors("observability"), engine.connect() as conn:
        now = read_now(conn, clock)
        by_state = observability_queries.entities_by_state(conn, machine)
        edges = observability_queries.edges_since(conn, now - window, machine)
    entered: dict[tuple[str, str], int] = {}
    for edge in edges:
        key = (edge["machine"], edge["to"])
        entered[key] = entered.get(key, 0) + edge["count"]
    states = [
        {"machine": m, "state": s, "entities": n, "entered_in_window": entered.pop((m, s), 0)}
        for m, s, n in by_state
    ]
    states += [  # states entered in the window that hold no entity now
        {"machine": m, "state": s, "entities": 0, "entered_in_window": n}
        for (m, s), n in sorted(entered.items())
    ]
    return {
        "at": now,
        "window_seconds": window.total_seconds(),
        "states": states,
        "edges": edges,
    }


def recent_transitions(
    engine: Engine,
    *,
    limit: int,
    before_id: int | None = None,
    machine: str | None = None,
    entity_id: str | None = None,
    trigger: str | None = None,
) -> list[tuple[int, HistoryEntry]]:
    """Committed transitions newest first, older than ``before_id``: ``(id, entry)`` pairs."""
    with translate_errors("observability"), engine.connect() as conn:
        return observability_queries.recent_transitions(
            conn,
            limit=limit,
            before_id=before_id,
            machine=machine,
            entity_id=entity_id,
            trigger=trigger,
        )


__all__ = ["DEFAULT_WINDOW", "recent_transitions", "state_metrics", "summary"]
