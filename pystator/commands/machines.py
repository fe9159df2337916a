"""``pystator machines sync|list|show``: the machine registry in the database."""

from __future__ import annotations

import argparse
import json

from pystator.commands import cli_principal
from pystator.config.settings import load_settings
from pystator.fleet.composition import command_engine
from pystator.fsm_core.summary import summarize
from pystator.registry import versions


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``machines`` command group."""
    machines = sub.add_parser("machines", help="the machine registry in the database")
    msub = machines.add_subparsers(dest="machines_command", metavar="ACTION", required=True)
    sync = msub.add_parser("sync", help="publish every definition in DIR (changed ones only)")
    sync.add_argument("path", metavar="DIR", help="directory (or file) of definitions")
    sync.set_defaults(func=cmd_sync)
    listing = msub.add_parser("list", help="stored machines and their current versions")
    listing.add_argument("--all", action="store_true", help="include retired machines")
    listing.set_defaults(func=cmd_list)
    show = msub.add_parser("show", help="a stored machine's definition and versions")
    show.add_argument("name")
    show.add_argument("--version", type=int, default=None, help="default: the current one")
    show.set_defaults(func=cmd_show)


def cmd_sync(args: argparse.Namespace) -> int:
    """``machines sync DIR``: one line per definition (new version, or unchanged)."""
    settings = load_settings()
    with command_engine(settings, prepare=True) as engine:
        results = versions.sync_directory(engine, args.path, by=cli_principal())
    for result in results:
        verdict = "new version" if result.created else "unchanged"
        print(f"{result.name}: version {result.version} ({verdict})")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    """``machines list``."""
    with command_engine(load_settings()) as engine:
        records = versions.list_machines(engine, include_retired=args.all)
    for record in records:
        retired = f"  retired {record.retired_at:%Y-%m-%d %H:%M}" if record.retired_at else ""
        print(f"{record.name}  version {record.current_version}{retired}")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    """``machines show NAME``: summary, versions and the definition as JSON."""
    with command_engine(load_settings()) as engine:
        detail = versions.show_machine(engine, args.name, version=args.version)
    data = {
        "name": detail.record.name,
        "current_version": detail.record.current_version,
        "retired_at": detail.record.retired_at.isoformat() if detail.record.retired_at else None,
        "version": detail.version.version,
        "summary": str(summarize(detail.machine())),
        "versions": [
            {"version": v.version, "by": v.created_by, "at": v.created_at.isoformat()}
            for v in detail.versions
        ],
        "definition": detail.version.definition,
    }
    print(json.dumps(data, indent=2))
    return 0
