"""Operator commands: ``pystator events list|show|stats|replay|discard`` and ``entities show``."""

from __future__ import annotations

import argparse
import json
from typing import Any

from sqlalchemy.engine import Engine

from pystator.fsm_core.errors import InvalidEventError
from pystator.settings import load_settings
from pystator.stores.sql import entity_queries, event_queries
from pystator.stores.sql.engine import translate_errors
from pystator.stores.sql.event_queries import EVENT_STATUSES, EventFilter, EventRow
from pystator.worker.clock import utc_now
from pystator.worker.database import worker_engine

DEFAULT_LIST_LIMIT = 50


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``events`` and ``entities`` command groups."""
    events = sub.add_parser("events", help="inspect and repair worker events")
    esub = events.add_subparsers(dest="events_command", metavar="ACTION", required=True)

    listing = esub.add_parser("list", help="list events, newest first")
    _filters(listing)
    listing.add_argument("--limit", type=int, default=DEFAULT_LIST_LIMIT)
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    listing.set_defaults(func=cmd_list)

    show = esub.add_parser("show", help="one event with its errors and actions")
    show.add_argument("id", type=int)
    show.set_defaults(func=cmd_show)

    stats = esub.add_parser("stats", help="counts by status, retries, duplicates, outbox")
    stats.add_argument("--json", action="store_true")
    stats.set_defaults(func=cmd_stats)

    for name, func, text in (
        ("replay", cmd_replay, "send dead/rejected/discarded events back to pending"),
        ("discard", cmd_discard, "mark pending/dead/rejected events discarded"),
    ):
        parser = esub.add_parser(name, help=text)
        parser.add_argument("id", type=int, nargs="*", help="event ids (or use filters)")
        _filters(parser)
        parser.set_defaults(func=func)

    entities = sub.add_parser("entities", help="inspect entity state")
    nsub = entities.add_subparsers(dest="entities_command", metavar="ACTION", required=True)
    eshow = nsub.add_parser("show", help="state, version, context and history of one entity")
    eshow.add_argument("machine")
    eshow.add_argument("entity_id")
    eshow.add_argument("--history", type=int, default=20, help="last N history rows (0: none)")
    eshow.set_defaults(func=cmd_entity_show)


def _filters(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--status", choices=EVENT_STATUSES, default=None)
    parser.add_argument("--machine", default=None)
    parser.add_argument("--entity", dest="entity_id", default=None)
    parser.add_argument("--trigger", default=None)


def _filter(args: argparse.Namespace) -> EventFilter:
    return EventFilter(
        ids=tuple(getattr(args, "id", None) or ()),
        status=args.status,
        machine=args.machine,
        entity_id=args.entity_id,
        trigger=args.trigger,
    )


def _engine() -> Engine:
    return worker_engine(load_settings().database_url)


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, default=str, sort_keys=True))


def _line(event: EventRow) -> str:
    reason = (event.outcome or {}).get("reason") or (event.outcome or {}).get("target_state")
    last_error = event.errors[-1].get("message") if event.errors else ""
    return (
        f"{event.id:>8}  {event.status:<9}  {event.machine}/{event.entity_id}  {event.trigger}"
        f"  attempts={event.attempts}/{event.max_attempts}"
        + (f"  dup={event.duplicate_count}" if event.duplicate_count else "")
        + (f"  {reason}" if reason else "")
        + (f"  error={last_error}" if last_error else "")
    )


def cmd_list(args: argparse.Namespace) -> int:
    """``events list``."""
    with translate_errors("events"), _engine().connect() as conn:
        events = event_queries.list_events(conn, _filter(args), limit=args.limit)
    for event in events:
        print(json.dumps(event.to_dict(), default=str) if args.json else _line(event))
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    """``events show ID``."""
    with translate_errors("events"), _engine().connect() as conn:
        event = event_queries.get_event(conn, args.id)
        actions = event_queries.list_outbox(conn, event_id=args.id) if event else []
    if event is None:
        raise InvalidEventError(f"no event with id {args.id}")
    data = event.to_dict()
    data["actions"] = [
        {"id": a.id, "action": a.action, "phase": a.phase, "attempts": a.attempts}
        for a in reversed(actions)
    ]
    _print_json(data)
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    """``events stats``."""
    with translate_errors("events"), _engine().connect() as conn:
        stats = event_queries.stats(conn)
    if args.json:
        _print_json(stats)
        return 0
    for status, count in stats["events"].items():
        print(f"{status:<10} {count}")
    print(f"duplicates {stats['duplicates']}  (idempotency hits)")
    print(f"retried    {stats['retried']}  (events that needed more than one attempt)")
    print(f"retrying   {stats['retrying']}  (pending after a failed attempt)")
    outbox = stats["outbox"]
    print(f"outbox     pending={outbox['pending']} done={outbox['done']} dead={outbox['dead']}")
    return 0


def _require_selection(where: EventFilter) -> None:
    if not (where.ids or where.status or where.machine or where.entity_id or where.trigger):
        raise InvalidEventError("give event ids or at least one filter (--status, --machine, …)")


def cmd_replay(args: argparse.Namespace) -> int:
    """``events replay ID…`` or by filter; nudges the workers afterwards."""
    from pystator.worker.runtime import Runtime

    where = _filter(args)
    _require_selection(where)
    engine = _engine()
    with translate_errors("events"), engine.begin() as conn:
        keys = event_queries.replay(conn, where, utc_now())
    runtime = Runtime.from_settings(load_settings())
    runtime.nudger.nudge(keys)  # the relay would find them too; this is just sooner
    flush = getattr(runtime.nudger, "flush", None)
    if flush is not None:
        flush()
    runtime.close()
    print(f"replayed events of {len(keys)} entities")
    return 0


def cmd_discard(args: argparse.Namespace) -> int:
    """``events discard ID…`` or by filter."""
    where = _filter(args)
    _require_selection(where)
    with translate_errors("events"), _engine().begin() as conn:
        count = event_queries.discard(conn, where, utc_now())
    print(f"discarded {count} events")
    return 0


def cmd_entity_show(args: argparse.Namespace) -> int:
    """``entities show MACHINE ENTITY``."""
    with translate_errors("entities"), _engine().connect() as conn:
        record = entity_queries.load_record(conn, args.machine, args.entity_id)
        history = entity_queries.load_history(conn, args.machine, args.entity_id)
        pending = event_queries.list_events(
            conn,
            EventFilter(status="pending", machine=args.machine, entity_id=args.entity_id),
            limit=DEFAULT_LIST_LIMIT,
        )
    if record is None and not history:
        raise InvalidEventError(f"no entity {args.machine}/{args.entity_id}")
    data: dict[str, Any] = {
        "machine": args.machine,
        "entity_id": args.entity_id,
        "state": record.state if record else None,
        "version": record.version if record else None,
        "context": dict(record.context) if record else None,
        "updated_at": record.updated_at.isoformat() if record and record.updated_at else None,
        "pending_events": [e.id for e in reversed(pending)],
    }
    if args.history:
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
            for h in history[-args.history :]
        ]
    _print_json(data)
    return 0
