"""``pystator db upgrade|downgrade|current|history``: schema migrations from the command line."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from sqlalchemy import make_url

from pystator import migrations
from pystator.settings import load_settings

if TYPE_CHECKING:
    SubParsers = argparse._SubParsersAction[argparse.ArgumentParser]


def register(subparsers: SubParsers) -> None:
    """Add the ``db`` command and its subcommands."""
    db = subparsers.add_parser("db", help="database schema migrations (Alembic)")
    db.set_defaults(func=lambda _args: _usage(db))
    sub = db.add_subparsers(dest="db_command", metavar="ACTION")

    up = sub.add_parser("upgrade", help="upgrade the schema (default: to the newest revision)")
    up.add_argument("revision", nargs="?", default=migrations.HEAD)
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


def _url_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--url", help="database URL (default: PYSTATOR_DATABASE_URL / pystator.cfg / sqlite file)"
    )


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _url(args: argparse.Namespace) -> str:
    return str(args.url or load_settings().database_url)


def _safe(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def _upgrade(args: argparse.Namespace) -> int:
    url = _url(args)
    migrations.upgrade(url, args.revision)
    print(f"{_safe(url)}: at revision {migrations.current(url)}")
    return 0


def _downgrade(args: argparse.Namespace) -> int:
    url = _url(args)
    migrations.downgrade(url, args.revision)
    print(f"{_safe(url)}: at revision {migrations.current(url) or 'base'}")
    return 0


def _current(args: argparse.Namespace) -> int:
    url = _url(args)
    revision = migrations.current(url)
    head = migrations.head()
    status = "up to date" if revision == head else f"head is {head}"
    print(f"{revision or 'base (not migrated)'} ({status})")
    return 0


def _history(_args: argparse.Namespace) -> int:
    head = migrations.head()
    for revision, down, message in migrations.history():
        marker = " (head)" if revision == head else ""
        print(f"{down or 'base'} -> {revision}{marker}: {message}")
    return 0
