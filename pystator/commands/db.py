"""``pystator db upgrade|downgrade|current|history``: schema migrations from the command line.

``pystator db partition-history`` turns on the opt-in PostgreSQL partitioning of
``transition_history`` by day (:func:`pystator.services.schema.partition_history`).
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from pystator.config.settings import load_settings
from pystator.services import schema

if TYPE_CHECKING:
    SubParsers = argparse._SubParsersAction[argparse.ArgumentParser]

#: Daily partitions ``partition-history`` creates after today's.
DEFAULT_DAYS_AHEAD = 7
#: Seconds ``partition-history`` waits for the table's exclusive lock before giving up.
DEFAULT_LOCK_TIMEOUT_SECONDS = 10.0
#: Exit status for a request the database cannot do (partitioning on SQLite) or bad input.
EXIT_USAGE = 2


def register(subparsers: SubParsers) -> None:
    """Add the ``db`` command and its subcommands."""
    db = subparsers.add_parser("db", help="database schema migrations (Alembic)")
    db.set_defaults(func=lambda _args: _usage(db))
    sub = db.add_subparsers(dest="db_command", metavar="ACTION")

    up = sub.add_parser("upgrade", help="upgrade the schema (default: to the newest revision)")
    up.add_argument("revision", nargs="?", default=schema.HEAD)
    _url_option(up)
    up.set_defaults(func=_upgrade)

    down = sub.add_parser("downgrade", help="downgrade the schema to REVISION ('base' = empty)")
    down.add_argument("revision")
    _url_option(down)
    down.set_defaults(func=_downgrade)

    cur = sub.add_parser("current", help="show the database's revision")
    _url_option(cur)
    cur.set_defaults(func=_current)

    hist = sub.add_parser("history", help="list the shipped revisions")
    hist.set_defaults(func=_history)

    part = sub.add_parser(
        "partition-history",
        help="PostgreSQL: partition transition_history by day (idempotent: re-run to add days)",
    )
    part.add_argument(
        "--days-ahead",
        type=int,
        default=DEFAULT_DAYS_AHEAD,
        help=f"daily partitions to create after today's (default {DEFAULT_DAYS_AHEAD})",
    )
    part.add_argument(
        "--lock-timeout",
        type=float,
        default=DEFAULT_LOCK_TIMEOUT_SECONDS,
        help="give up if the table's lock is not granted within this many seconds (default "
        f"{DEFAULT_LOCK_TIMEOUT_SECONDS:g}; meanwhile the fleet's history writes queue behind it)",
    )
    _url_option(part)
    part.set_defaults(func=_partition_history)


def _url_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--url", help="database URL (default: PYSTATOR_DATABASE_URL / pystator.cfg / sqlite file)"
    )


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _url(args: argparse.Namespace) -> str:
    return str(args.url or load_settings().database_url)


def _upgrade(args: argparse.Namespace) -> int:
    url = _url(args)
    schema.upgrade(url, args.revision)
    print(f"{schema.printable_url(url)}: at revision {schema.current(url)}")
    return 0


def _downgrade(args: argparse.Namespace) -> int:
    url = _url(args)
    schema.downgrade(url, args.revision)
    print(f"{schema.printable_url(url)}: at revision {schema.current(url) or 'base'}")
    return 0


def _current(args: argparse.Namespace) -> int:
    url = _url(args)
    revision = schema.current(url)
    head = schema.head()
    status = "up to date" if revision == head else f"head is {head}"
    print(f"{revision or 'base (not migrated)'} ({status})")
    return 0


def _history(_args: argparse.Namespace) -> int:
    head = schema.head()
    for revision, down, message in schema.history():
        marker = " (head)" if revision == head else ""
        print(f"{down or 'base'} -> {revision}{marker}: {message}")
    return 0


def _partition_history(args: argparse.Namespace) -> int:
    url = _url(args)
    if args.days_ahead < 0 or args.lock_timeout <= 0:
        print("--days-ahead must be 0 or more and --lock-timeout more than 0")
        return EXIT_USAGE
    try:
        result = schema.partition_history(
            url, days_ahead=args.days_ahead, lock_timeout_seconds=args.lock_timeout
        )
    except schema.PartitioningUnsupportedError as exc:
        print(exc)
        return EXIT_USAGE
    if result.converted and result.legacy_range is not None:
        lower, upper = result.legacy_range
        print(
            f"{schema.printable_url(url)}: transition_history is now partitioned by day; its "
            f"{result.legacy_rows} existing rows are the partition {schema.LEGACY_PARTITION} "
            f"[{lower:%Y-%m-%d}, {upper:%Y-%m-%d})"
        )
    else:
        print(f"{schema.printable_url(url)}: transition_history was already partitioned")
    created = ", ".join(result.created) if result.created else "none (all present)"
    print(f"partitions created: {created}")
    return 0
