"""Operator commands: ``pystator events …``, ``pystator actions …``, ``pystator entities show``.

Thin: each parses its arguments, calls one function of :mod:`pystator.services.admin` and prints.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

from sqlalchemy.engine import Engine

from pystator.commands.entity_ops import register_entity_ops
from pystator.config.settings import load_settings
from pystator.fleet.composition import command_engine, make_nudger
from pystator.fsm_core.records import EventStatus
from pystator.services import admin
from pystator.services.admin import ActionFilter, EventFilter, EventRow, OutboxRow, OutboxStatus

DEFAULT_LIST_LIMIT = 50
STATUSES = tuple(status.value for status in EventStatus)
ACTION_STATUSES = tuple(status.value for status in OutboxStatus)
#: Exit status when a bulk change needs confirmation and none could be asked for.
EXIT_NOT_CONFIRMED = 3


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
        ("replay", cmd_replay, "send dead (or other finished) events back to pending"),
        ("discard", cmd_discard, "mark pending/dead/rejected events discarded"),
    ):
        parser = esub.add_parser(name, help=text)
        parser.add_argument("id", type=int, nargs="*", help="event ids (or use filters)")
        _filters(parser)
        _confirmation(parser)
        parser.set_defaults(func=func)

    actions = sub.add_parser("actions", help="inspect and repair outbox actions")
    asub = actions.add_subparsers(dest="actions_command", metavar="ACTION", required=True)
    alist = asub.add_parser("list", help="outbox actions, newest first")
    _action_filters(alist)
    alist.add_argument("--limit", type=int, default=DEFAULT_LIST_LIMIT)
    alist.add_argument("--json", action="store_true", help="one JSON object per line")
    alist.set_defaults(func=cmd_actions_list)
    for name, func, text in (
        ("replay", cmd_actions_replay, "send dead or discarded actions back to pending"),
        ("discard", cmd_actions_discard, "give up on pending or dead actions"),
    ):
        parser = asub.add_parser(name, help=text)
        parser.add_argument("id", type=int, nargs="*", help="action ids (or use filters)")
        _action_filters(parser)
        _confirmation(parser)
        parser.set_defaults(func=func)

    entities = sub.add_parser("entities", help="inspect, export, import, purge, archive entities")
    nsub = entities.add_subparsers(dest="entities_command", metavar="ACTION", required=True)
    eshow = nsub.add_parser("show", help="state, version, context and history of one entity")
    eshow.add_argument("machine")
    eshow.add_argument("entity_id")
    eshow.add_argument("--history", type=int, default=20, help="last N history rows (0: none)")
    eshow.set_defaults(func=cmd_entity_show)
    register_entity_ops(nsub)


def _filters(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--status", choices=STATUSES, default=None)
    parser.add_argument("--machine", default=None)
    parser.add_argument("--entity", dest="entity_id", default=None)
    parser.add_argument("--trigger", default=None)


def _action_filters(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--status", choices=ACTION_STATUSES, default=None)
    parser.add_argument("--machine", default=None)
    parser.add_argument("--entity", dest="entity_id", default=None)
    parser.add_argument("--action", default=None, help="the action's name")
    parser.add_argument("--event", dest="event_id", type=int, default=None)


def _confirmation(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    parser.add_argument("--dry-run", action="store_true", help="print the count; change nothing")


def _action_filter(args: argparse.Namespace) -> ActionFilter:
    return ActionFilter(
        ids=tuple(getattr(args, "id", None) or ()),
        status=args.status,
        machine=args.machine,
        entity_id=args.entity_id,
        action=args.action,
        event_id=args.event_id,
    )


def refusal(args: argparse.Namespace, count: int, what: str) -> int | None:
    """None to go ahead, else the exit status to stop with. Event or action ids alone need no
    confirmation; a change by filter needs ``--yes`` or a ``y`` typed at the prompt."""
    print(f"{what}: {count}")
    if args.dry_run or count == 0:
        return 0
    by_filter = any(
        getattr(args, name, None) is not None
        for name in ("status", "machine", "entity_id", "trigger", "action", "event_id")
    )
    if args.yes or not by_filter:
        return None
    if not sys.stdin.isatty():
        print("not confirmed: run again with --yes (or --dry-run to only count)", file=sys.stderr)
        return EXIT_NOT_CONFIRMED
    return None if input("proceed? [y/N] ").strip().lower() in ("y", "yes") else 0


def _confirmed(args: argparse.Namespace, count: int, what: str, apply: Callable[[], str]) -> int:
    """Show ``count``; unless :func:`refusal` stops there, run the change and print what it
    reports. Returns the exit status."""
    stop = refusal(args, count, what)
    if stop is not None:
        return stop
    print(apply())
    return 0


def _filter(args: argparse.Namespace) -> EventFilter:
    return EventFilter(
        ids=tuple(getattr(args, "id", None) or ()),
        status=args.status,
        machine=args.machine,
        entity_id=args.entity_id,
        trigger=args.trigger,
    )


@contextmanager
def _engine() -> Iterator[Engine]:
    """The database's engine for one command, disposed when it ends (on errors too)."""
    with command_engine(load_settings()) as engine:
        yield engine


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
    with _engine() as engine:
        events = admin.list_events(engine, _filter(args), limit=args.limit)
    for event in events:
        print(json.dumps(event.to_dict(), default=str) if args.json else _line(event))
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    """``events show ID``."""
    with _engine() as engine:
        event = admin.show_event(engine, args.id)
    _print_json(event.to_dict())
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    """``events stats``."""
    with _engine() as engine:
        stats = admin.stats(engine)
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
    """``events replay ID…`` or by filter (``--status dead`` unless another is given); shows the
    count, asks, replays, nudges the workers."""
    where = _filter(args)
    if where.status is None and any((where.machine, where.entity_id, where.trigger)):
        where = replace(where, status=EventStatus.DEAD)
    with _engine() as engine:

        def apply() -> str:
            replayed = admin.replay(engine, where, make_nudger(load_settings()))
            return f"replayed {replayed.events} events of {replayed.entities} entities"

        return _confirmed(args, admin.count_replay(engine, where), "events to replay", apply)


def cmd_discard(args: argparse.Namespace) -> int:
    """``events discard ID…`` or by filter; shows the count and asks first."""
    where = _filter(args)
    with _engine() as engine:
        return _confirmed(
            args,
            admin.count_discard(engine, where),
            "events to discard",
            lambda: f"discarded {admin.discard(engine, where)} events",
        )


def cmd_actions_list(args: argparse.Namespace) -> int:
    """``actions list``."""
    with _engine() as engine:
        rows = admin.list_actions(engine, _action_filter(args), limit=args.limit)
    for row in rows:
        print(json.dumps(_action_dict(row), default=str) if args.json else _action_line(row))
    return 0


def cmd_actions_replay(args: argparse.Namespace) -> int:
    """``actions replay ID…`` or by filter (``--status dead`` unless another is given)."""
    where = _action_filter(args)
    if where.status is None and not where.is_empty() and not where.ids:
        where = replace(where, status=OutboxStatus.DEAD)
    with _engine() as engine:
        return _confirmed(
            args,
            admin.count_actions(engine, where),
            "actions matching",
            lambda: f"replayed {admin.replay_actions(engine, where)} actions",
        )


def cmd_actions_discard(args: argparse.Namespace) -> int:
    """``actions discard ID…`` or by filter."""
    where = _action_filter(args)
    with _engine() as engine:
        return _confirmed(
            args,
            admin.count_actions(engine, where),
            "actions matching",
            lambda: f"discarded {admin.discard_actions(engine, where)} actions",
        )


def _action_dict(row: OutboxRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "status": row.status,
        "action": row.action,
        "machine": row.machine,
        "entity_id": row.entity_id,
        "event_id": row.event_id,
        "attempts": row.attempts,
        "errors": [dict(e) for e in row.errors],
    }


def _action_line(row: OutboxRow) -> str:
    last_error = row.errors[-1].get("message") if row.errors else ""
    return (
        f"{row.id:>8}  {row.status:<9}  {row.machine}/{row.entity_id}  {row.action}"
        f"  event={row.event_id}  attempts={row.attempts}"
        + (f"  error={last_error}" if last_error else "")
    )


def cmd_entity_show(args: argparse.Namespace) -> int:
    """``entities show MACHINE ENTITY``."""
    with _engine() as engine:
        view = admin.entity_view(engine, args.machine, args.entity_id)
    _print_json(view.to_dict(history=args.history))
    return 0
