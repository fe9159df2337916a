"""Operator operations on the fleet, as plain functions over a database engine.

``pystator events …`` / ``pystator entities …`` and the HTTP API are thin callers of these: they
parse input, call one function and shape its answer. Nothing here parses arguments or prints.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy.engine import Engine

from pystator.clock import Clock, utc_now
from pystator.fsm_core.errors import EntityNotFoundError, InvalidEventError
from pystator.fsm_core.records import EntityRecord, EventStatus, HistoryEntry
from pystator.stores.sql import (
    admin_queries,
    entity_queries,
    history_queries,
    outbox_queries,
)
from pystator.stores.sql.admin_queries import EventFilter
from pystator.stores.sql.connections import transaction
from pystator.stores.sql.engine import translate_errors
from pystator.stores.sql.outbox_queries import ActionFilter
from pystator.stores.sql.rows import EventRow, OutboxRow
from pystator.worker.nudge import Nudger

#: Events ``entity_view`` lists as pending at most.
PENDING_LIMIT = 50


@dataclass(frozen=True, slots=True, kw_only=True)
class EventDetail:
    """One event with the actions it caused."""

    event: EventRow
    actions: tuple[OutboxRow, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly: the event's fields plus ``actions``."""
        data = self.event.to_dict()
        data["actions"] = [
            {"id": a.id, "action": a.action, "phase": a.phase, "attempts": a.attempts}
            for a in self.actions
        ]
        return data


@dataclass(frozen=True, slots=True, kw_only=True)
class EntityView:
    """One entity: its record (None if never written), history and pending events."""

    machine: str
    entity_id: str
    record: EntityRecord | None
    history: tuple[HistoryEntry, ...] = ()
    pending: tuple[EventRow, ...] = field(default_factory=tuple)

    def to_dict(self, *, history: int | None = None) -> dict[str, Any]:
        """JSON-friendly; ``history`` keeps only the last N history rows (0: none)."""
        record = self.record
        data: dict[str, Any] = {
            "machine": self.machine,
            "entity_id": self.entity_id,
            "state": record.state if record else None,
            "version": record.version if record else None,
            "context": dict(record.context) if record else None,
            "updated_at": record.updated_at.isoformat() if record and record.updated_at else None,
            "pending_events": [e.id for e in self.pending],
        }
        rows = self.history if history is None else self.history[-history:] if history else ()
        if history != 0:
            data["history"] = [
                {
                    "version": h.version,
                    "from": h.source_state,
                    "to": h.target_state,
                    "trigger": h.trigger,
                    "event_id": h.event_id,
                    "origin": h.origin,
                    "at": h.created_at.isoformat(),
                }
                for h in rows
            ]
        return data


def list_events(engine: Engine, where: EventFilter, *, limit: int = 50) -> list[EventRow]:
    """Events matching ``where``, newest first."""
    with translate_errors("events"), engine.connect() as conn:
        return admin_queries.list_events(conn, where, limit=limit)


def show_event(engine: Engine, event_id: int) -> EventDetail:
    """One event and its actions; :class:`InvalidEventError` when there is no such event."""
    with translate_errors("events"), engine.connect() as conn:
        event = admin_queries.get_event(conn, event_id)
        actions = outbox_queries.list_outbox(conn, event_id=event_id) if event else []
    if event is None:
        raise InvalidEventError(f"no event with id {event_id}", details={"event_id": event_id})
    return EventDetail(event=event, actions=tuple(reversed(actions)))


def stats(engine: Engine) -> dict[str, Any]:
    """Counts by status, retried and retrying events, idempotency hits, outbox rows."""
    with translate_errors("events"), engine.connect() as conn:
        return admin_queries.stats(conn)


def gauges(
    engine: Engine, *, heartbeat_seconds: float, clock: Clock = utc_now
) -> admin_queries.FleetGauges:
    """The fleet's state right now (backlog, oldest due age, dead events, outbox, timers,
    workers alive: a fresh heartbeat within three intervals)."""
    now = clock()
    alive_since = now - timedelta(seconds=3 * heartbeat_seconds)
    with translate_errors("gauges"), engine.connect() as conn:
        return admin_queries.fleet_gauges(conn, now, alive_since=alive_since)


def require_selection(where: EventFilter) -> None:
    """Bulk operations need ids or at least one filter (never "everything" by accident)."""
    if not where.ids and not any((where.status, where.machine, where.entity_id, where.trigger)):
        raise InvalidEventError("give event ids or at least one filter (--status, --machine, …)")


def count_replay(engine: Engine, where: EventFilter) -> int:
    """How many events :func:`replay` would send back (the preview before confirming)."""
    require_selection(where)
    with translate_errors("events"), engine.connect() as conn:
        return admin_queries.count_replayable(conn, where)


def count_discard(engine: Engine, where: EventFilter) -> int:
    """How many events :func:`discard` would discard (the preview before confirming)."""
    require_selection(where)
    with translate_errors("events"), engine.connect() as conn:
        return admin_queries.count_discardable(conn, where)


def replay(engine: Engine, where: EventFilter, nudger: Nudger, *, clock: Clock = utc_now) -> int:
    """Send finished events matching ``where`` back to ``pending`` (fresh attempts, old errors
    kept) and nudge their entities; returns how many entities were nudged.

    A replayed event keeps its id, so it takes its original place in its entity's order: it is
    applied before any later event of that entity still pending.
    """
    require_selection(where)
    with translate_errors("events"), transaction(engine) as conn:
        keys = admin_queries.replay(conn, where, clock())
    nudger.nudge(keys)  # the relay would find them too; this is just sooner
    nudger.flush()
    return len(keys)


def discard(engine: Engine, where: EventFilter, *, clock: Clock = utc_now) -> int:
    """Mark pending, dead or rejected events matching ``where`` discarded; returns the count.

    Takes each affected entity's lock first: an event being applied right now ends applied
    (and is then not discarded) or discarded (and is then not applied), never both.
    """
    require_selection(where)
    with translate_errors("events"), transaction(engine) as conn:
        return admin_queries.discard(conn, where, clock())


def list_actions(engine: Engine, where: ActionFilter, *, limit: int = 50) -> list[OutboxRow]:
    """Outbox rows matching ``where``, newest first."""
    with translate_errors("actions"), engine.connect() as conn:
        return outbox_queries.list_outbox(conn, where, limit=limit)


def count_actions(engine: Engine, where: ActionFilter) -> int:
    """How many outbox rows match ``where`` (the preview before confirming)."""
    _require_action_selection(where)
    with translate_errors("actions"), engine.connect() as conn:
        return outbox_queries.count_outbox(conn, where)


def replay_actions(engine: Engine, where: ActionFilter, *, clock: Clock = utc_now) -> int:
    """Send dead or discarded actions matching ``where`` back to pending, due now (a worker's
    relay runs them); returns how many."""
    _require_action_selection(where)
    with translate_errors("actions"), transaction(engine) as conn:
        return outbox_queries.replay_outbox(conn, where, clock())


def discard_actions(engine: Engine, where: ActionFilter, *, clock: Clock = utc_now) -> int:
    """Give up on pending or dead actions matching ``where``; returns how many."""
    _require_action_selection(where)
    with translate_errors("actions"), transaction(engine) as conn:
        return outbox_queries.discard_outbox(conn, where, clock())


def _require_action_selection(where: ActionFilter) -> None:
    if where.is_empty():
        raise InvalidEventError("give action ids or at least one filter (--status, --action, …)")


def entity_view(engine: Engine, machine: str, entity_id: str) -> EntityView:
    """State, version, context, history and pending events of one entity."""
    pending_filter = EventFilter(status=EventStatus.PENDING, machine=machine, entity_id=entity_id)
    with translate_errors("entities"), engine.connect() as conn:
        record = entity_queries.load_record(conn, machine, entity_id)
        history = history_queries.load_history(conn, machine, entity_id)
        pending = admin_queries.list_events(conn, pending_filter, limit=PENDING_LIMIT)
    if record is None and not history and not pending:
        raise EntityNotFoundError(f"no entity {machine}/{entity_id}")
    return EntityView(
        machine=machine,
        entity_id=entity_id,
        record=record,
        history=tuple(history),
        pending=tuple(reversed(pending)),
    )


__all__ = [
    "ActionFilter",
    "EntityView",
    "EventDetail",
    "EventFilter",
    "count_actions",
    "count_discard",
    "count_replay",
    "discard",
    "discard_actions",
    "entity_view",
    "gauges",
    "list_actions",
    "list_events",
    "replay",
    "replay_actions",
    "require_selection",
    "show_event",
    "stats",
]
