"""Operator operations on the fleet, as plain functions over a database engine.

``pystator events …`` / ``pystator entities …`` and the HTTP API are thin callers of these: they
parse input, call one function and shape its answer. Nothing here parses arguments or prints.

The selection and row types of these operations (:class:`EventFilter`, :class:`ActionFilter`,
:class:`EventRow`, :class:`OutboxRow`, :class:`OutboxStatus`, :data:`REPLAYABLE`,
:data:`DISCARDABLE`) are this module's interface: callers import them from here. They are
defined in :mod:`pystator.stores.sql` next to the SQL they compile to.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy.engine import Engine

from pystator.fleet.nudge import Nudger
from pystator.fsm_core.clock import Clock, utc_now
from pystator.fsm_core.errors import EntityNotFoundError, InvalidEventError, NotFoundError
from pystator.fsm_core.records import EntityRecord, EventStatus, HistoryEntry
from pystator.stores.sql import (
    admin_queries,
    entity_queries,
    heartbeat_queries,
    history_queries,
    outbox_queries,
    stats_queries,
    timer_queries,
)
from pystator.stores.sql.admin_queries import EventFilter
from pystator.stores.sql.connections import transaction
from pystator.stores.sql.db_clock import read_now
from pystator.stores.sql.engine import translate_errors
from pystator.stores.sql.outbox_queries import ActionFilter
from pystator.stores.sql.rows import DISCARDABLE, REPLAYABLE, EventRow, OutboxRow, OutboxStatus

#: :func:`replay_actions` or :func:`discard_actions`: ``(engine, where, *, limit=…) -> count``.
ActionOperation = Callable[..., int]

#: Events ``entity_view`` lists as pending at most.
PENDING_LIMIT = 50
#: History rows ``entity_view`` returns per page by default.
HISTORY_PAGE = 50


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
    timers: tuple[dict[str, Any], ...] = ()  # armed timers, soonest first
    next_history_before: int | None = None  # pass as ``history_before`` for the next page

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
            data["history"] = [history_dict(h) for h in rows]
        return data


def history_dict(entry: HistoryEntry) -> dict[str, Any]:
    """One history row, JSON-friendly (the CLI's and the API's shape)."""
    return {
        "machine": entry.machine,
        "entity_id": entry.entity_id,
        "version": entry.version,
        "from": entry.source_state,
        "to": entry.target_state,
        "trigger": entry.trigger,
        "event_id": entry.event_id,
        "origin": entry.origin,
        "actions": list(entry.actions),
        "machine_version": entry.machine_version,
        "at": entry.created_at.isoformat(),
    }


@dataclass(frozen=True, slots=True, kw_only=True)
class Replayed:
    """What :func:`replay` did: events sent back to pending, entities nudged."""

    events: int
    entities: int


def list_events(
    engine: Engine,
    where: EventFilter,
    *,
    limit: int = 50,
    before_id: int | None = None,
    after_id: int | None = None,
) -> list[EventRow]:
    """Events matching ``where``, newest first; ``before_id`` continues after a page's last id,
    ``after_id`` gives the oldest ones newer than that (oldest first)."""
    with translate_errors("events"), engine.connect() as conn:
        return admin_queries.list_events(
            conn, where, limit=limit, before_id=before_id, after_id=after_id
        )


def show_event(engine: Engine, event_id: int) -> EventDetail:
    """One event and its actions; :class:`NotFoundError` when there is no such event."""
    with translate_errors("events"), engine.connect() as conn:
        event = admin_queries.get_event(conn, event_id)
        actions = outbox_queries.list_outbox(conn, event_id=event_id) if event else []
    if event is None:
        raise NotFoundError(f"no event with id {event_id}", details={"event_id": event_id})
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


def fleet_stats(engine: Engine, *, clock: Clock = utc_now) -> dict[str, Any]:
    """:func:`stats` plus counts by machine, the backlog (pending, due, oldest due age) and
    applied / retried / dead events per minute over the last hour."""
    now = clock()
    with translate_errors("events"), engine.connect() as conn:
        data = admin_queries.stats(conn)
        data["by_machine"] = stats_queries.by_machine(conn)
        data["backlog"] = stats_queries.backlog(conn, now)
        data["per_minute"] = stats_queries.per_minute(conn, now)
    data["at"] = now.isoformat()
    return data


def list_workers(engine: Engine) -> list[dict[str, Any]]:
    """Every worker process's heartbeat row, most recent beat first."""
    with translate_errors("workers"), engine.connect() as conn:
        return heartbeat_queries.heartbeats(conn)


def transitions(
    engine: Engine,
    *,
    limit: int,
    after_id: int | None = None,
    machine: str | None = None,
    entity_id: str | None = None,
) -> list[tuple[int, HistoryEntry]]:
    """The transition feed in commit order after ``after_id``: ``(id, entry)`` pairs."""
    with translate_errors("transitions"), engine.connect() as conn:
        return history_queries.feed(
            conn, limit=limit, after_id=after_id, machine=machine, entity_id=entity_id
        )


def require_selection(where: EventFilter) -> None:
    """Bulk operations need ids or at least one filter (never "everything" by accident)."""
    if where.is_empty():
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


def replay(
    engine: Engine,
    where: EventFilter,
    nudger: Nudger,
    *,
    clock: Clock | None = None,
    limit: int | None = None,
) -> Replayed:
    """Send finished events matching ``where`` back to ``pending`` (fresh attempts, old errors
    kept; only the ``limit`` oldest, when given) and nudge their entities.

    A replayed event keeps its id, so it takes its original place in its entity's order: it is
    applied before any later event of that entity still pending.
    """
    require_selection(where)
    with translate_errors("events"), transaction(engine) as conn:
        # due now by the database's clock, which decides it (operators' hosts may be off)
        keys, events = admin_queries.replay(conn, where, read_now(conn, clock), limit=limit)
    nudger.nudge(keys)  # the relay would find them too; this is just sooner
    nudger.flush()
    return Replayed(events=events, entities=len(keys))


def discard(
    engine: Engine, where: EventFilter, *, clock: Clock = utc_now, limit: int | None = None
) -> int:
    """Mark pending, dead or rejected events matching ``where`` discarded (only the ``limit``
    oldest, when given); returns the count.

    Takes each affected entity's lock first: an event being applied right now ends applied
    (and is then not discarded) or discarded (and is then not applied), never both.
    """
    require_selection(where)
    with translate_errors("events"), transaction(engine) as conn:
        return admin_queries.discard(conn, where, clock(), limit=limit)


@dataclass(frozen=True, slots=True, kw_only=True)
class BulkChange:
    """What a retry or discard by selection did (or, on a dry run, would do): the rows the
    selection matches now, how many of them one call changes (at most ``limit``, the oldest
    first), how many it changed (None on a dry run) and, for event retries, the entities
    nudged."""

    dry_run: bool
    matched: int
    selected: int
    limit: int
    affected: int | None
    entities: int | None = None

    @classmethod
    def of(
        cls, matched: int, limit: int, affected: int | None, entities: int | None = None
    ) -> BulkChange:
        """The change of a call that ``matched`` rows and changed ``affected`` (None: dry run)."""
        return cls(
            dry_run=affected is None,
            matched=matched,
            selected=min(matched, limit),
            limit=limit,
            affected=affected,
            entities=entities,
        )


def bulk_retry_events(
    engine: Engine,
    where: EventFilter,
    nudger: Nudger,
    *,
    limit: int,
    dry_run: bool,
    clock: Clock = utc_now,
) -> BulkChange:
    """:func:`count_replay`, then (unless ``dry_run``) :func:`replay` of the ``limit`` oldest:
    what the CLI, the HTTP API and the dashboard run."""
    matched = count_replay(engine, where)
    if dry_run:
        return BulkChange.of(matched, limit, None)
    replayed = (
        replay(engine, where, nudger, clock=clock, limit=limit)
        if matched
        else Replayed(events=0, entities=0)
    )
    return BulkChange.of(matched, limit, replayed.events, replayed.entities)


def bulk_discard_events(
    engine: Engine, where: EventFilter, *, limit: int, dry_run: bool, clock: Clock = utc_now
) -> BulkChange:
    """:func:`count_discard`, then (unless ``dry_run``) :func:`discard` of the ``limit``
    oldest."""
    matched = count_discard(engine, where)
    if dry_run:
        return BulkChange.of(matched, limit, None)
    return BulkChange.of(
        matched, limit, discard(engine, where, clock=clock, limit=limit) if matched else 0
    )


def bulk_actions(
    engine: Engine,
    where: ActionFilter,
    operation: ActionOperation,
    *,
    limit: int,
    dry_run: bool,
) -> BulkChange:
    """:func:`count_actions`, then (unless ``dry_run``) ``operation``
    (:func:`replay_actions` or :func:`discard_actions`) on the ``limit`` oldest."""
    matched = count_actions(engine, where)
    return BulkChange.of(matched, limit, None if dry_run else operation(engine, where, limit=limit))


def list_actions(
    engine: Engine, where: ActionFilter, *, limit: int = 50, before_id: int | None = None
) -> list[OutboxRow]:
    """Outbox rows matching ``where``, newest first; ``before_id`` continues after a page."""
    with translate_errors("actions"), engine.connect() as conn:
        return outbox_queries.list_outbox(conn, where, limit=limit, before_id=before_id)


def count_actions(engine: Engine, where: ActionFilter) -> int:
    """How many outbox rows match ``where`` (the preview before confirming)."""
    _require_action_selection(where)
    with translate_errors("actions"), engine.connect() as conn:
        return outbox_queries.count_outbox(conn, where)


def replay_actions(
    engine: Engine, where: ActionFilter, *, clock: Clock | None = None, limit: int | None = None
) -> int:
    """Send dead or discarded actions matching ``where`` back to pending, due now by the
    database's clock (a worker's relay runs them; only the ``limit`` oldest, when given);
    returns how many."""
    _require_action_selection(where)
    with translate_errors("actions"), transaction(engine) as conn:
        return outbox_queries.replay_outbox(conn, where, read_now(conn, clock), limit=limit)


def discard_actions(
    engine: Engine, where: ActionFilter, *, clock: Clock = utc_now, limit: int | None = None
) -> int:
    """Give up on pending or dead actions matching ``where`` (the ``limit`` oldest, when
    given); returns how many."""
    _require_action_selection(where)
    with translate_errors("actions"), transaction(engine) as conn:
        return outbox_queries.discard_outbox(conn, where, clock(), limit=limit)


def _require_action_selection(where: ActionFilter) -> None:
    if where.is_empty():
        raise InvalidEventError("give action ids or at least one filter (--status, --action, …)")


def entity_view(
    engine: Engine,
    machine: str,
    entity_id: str,
    *,
    history_limit: int | None = None,
    history_before: int | None = None,
) -> EntityView:
    """State, version, context, history, pending events and armed timers of one entity.

    Without ``history_limit`` every history row comes back; with it, one page of the newest
    rows older than version ``history_before`` (``next_history_before`` continues).
    """
    pending_filter = EventFilter(status=EventStatus.PENDING, machine=machine, entity_id=entity_id)
    with translate_errors("entities"), engine.connect() as conn:
        record = entity_queries.load_record(conn, machine, entity_id)
        if history_limit is None:
            history = history_queries.load_history(conn, machine, entity_id)
        else:
            page = history_queries.page_history(
                conn, machine, entity_id, limit=history_limit, before_version=history_before
            )
            history = list(reversed(page))
        pending = admin_queries.list_events(conn, pending_filter, limit=PENDING_LIMIT)
        timers = timer_queries.armed_for(conn, machine, entity_id)
    if record is None and not history and not pending:
        raise EntityNotFoundError(f"no entity {machine}/{entity_id}")
    more = history_limit is not None and len(history) == history_limit and history[0].version > 1
    return EntityView(
        machine=machine,
        entity_id=entity_id,
        record=record,
        history=tuple(history),
        pending=tuple(reversed(pending)),
        timers=tuple(timers),
        next_history_before=history[0].version if more else None,
    )


__all__ = [
    "DISCARDABLE",
    "REPLAYABLE",
    "ActionFilter",
    "ActionOperation",
    "BulkChange",
    "EntityView",
    "EventDetail",
    "EventFilter",
    "EventRow",
    "OutboxRow",
    "OutboxStatus",
    "Replayed",
    "bulk_actions",
    "bulk_discard_events",
    "bulk_retry_events",
    "count_actions",
    "count_discard",
    "count_replay",
    "discard",
    "discard_actions",
    "entity_view",
    "fleet_stats",
    "gauges",
    "history_dict",
    "list_actions",
    "list_events",
    "list_workers",
    "replay",
    "replay_actions",
    "require_selection",
    "show_event",
    "stats",
    "transitions",
]
