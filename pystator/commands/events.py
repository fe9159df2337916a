"""Operator commands: ``pystator events list|show|stats|replay|discard`` and ``entities show``.

Thin: each parses its arguments, calls one function of :mod:`pystator.worker.admin` and prints.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from sqlalchemy.engine import Engine

from pystator.fsm_core.records import EventStatus
from pystator.settings import load_settings
from pystator.stores.sql.admin_queries import EventFilter
from pystator.stores.sql.connections import dispose, fleet_engine
from pystator.stores.sql.rows import EventRow
from pystator.worker import admin
from pystator.worker.runtime import make_nudger

DEFAULT_LIST_LIMIT = 50
STATUSES = tuple(status.value for status in EventStatus)


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
    parser.add_argument("--status", choices=STATUSES, default=None)
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
    return fleet_engine(load_settings().database_url)


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
    for event in admin.list_events(_engine(), _filter(args), limit=args.limit):
        print(json.dumps(event.to_dict(), default=str) if args.json else _line(event))
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    """``events show ID``."""
    _print_json(admin.show_event(_engine(), args.id).to_dict())
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    """``events stats``."""
    stats = admin.stats(_engine())
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


def cmd_replay(args: argparse.Namespace) -> int:
    """``events replay ID…`` or by filter; nudges the workers afterwards."""
    engine = _engine()
    try:
        entities = admin.replay(engine, _filter(args), make_nudger(load_settings()))
    finally:
        dispose(engine)
    print(f"replayed events of {entities} entities")
    return 0


def cmd_discard(args: argparse.Namespace) -> int:
    """``events discard ID…`` or by filter."""
    print(f"discarded {admin.discard(_engine(), _filter(args))} events")
    return 0


def cmd_entity_show(args: argparse.Namespace) -> int:
    """``entities show MACHINE ENTITY``."""
    view = admin.entity_view(_engine(), args.machine, args.entity_id)
    _print_json(view.to_dict(history=args.history))
    return 0
