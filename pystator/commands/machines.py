"""``pystator machines sync|retire|list|show``: the machine registry in the database.

``sync`` and ``retire`` are recorded in the audit log (and on the configuration-change feed) as
``cli:<user>@<host>``, with the command as the row's route."""

from __future__ import annotations

import argparse
import json
import sys

from pystator.config.settings import load_settings
from pystator.fleet.composition import command_engine
from pystator.fsm_core.summary import summarize
from pystator.registry import versions
from pystator.registry.compatibility import (
    IncompatibleVersionError,
    load_state_map,
    parse_state_map,
)
from pystator.services.audit import Actor


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``machines`` command group."""
    machines = sub.add_parser("machines", help="the machine registry in the database")
    msub = machines.add_subparsers(dest="machines_command", metavar="ACTION", required=True)
    sync = msub.add_parser("sync", help="publish every definition in DIR (changed ones only)")
    sync.add_argument("path", metavar="DIR", help="directory (or file) of definitions")
    sync.add_argument(
        "--map",
        action="append",
        default=[],
        metavar="OLD=NEW",
        help="move the entities of state OLD to NEW (repeatable)",
    )
    sync.add_argument(
        "--map-file", metavar="FILE", help="a YAML or JSON mapping of old states to new ones"
    )
    sync.add_argument(
        "--dry-run",
        action="store_true",
        help="print the compatibility report only (exit 1 when publishing would be refused)",
    )
    sync.add_argument(
        "--upgrade-policy",
        choices=versions.UPGRADE_POLICIES,
        default=None,
        help="auto: entities move to the new version on their next event; pinned: they stay "
        "on theirs until migrated (default: the current version's, else auto)",
    )
    sync.add_argument("--json", action="store_true", help="one JSON object per machine")
    sync.set_defaults(func=cmd_sync)
    retire = msub.add_parser(
        "retire", help="retire a machine: its new events are refused, its versions kept"
    )
    retire.add_argument("name")
    retire.set_defaults(func=cmd_retire)
    listing = msub.add_parser("list", help="stored machines and their current versions")
    listing.add_argument("--all", action="store_true", help="include retired machines")
    listing.set_defaults(func=cmd_list)
    show = msub.add_parser("show", help="a stored machine's definition and versions")
    show.add_argument("name")
    show.add_argument("--version", type=int, default=None, help="default: the current one")
    show.set_defaults(func=cmd_show)


def cmd_sync(args: argparse.Namespace) -> int:
    """``machines sync DIR``: one line per definition (new version, or unchanged), the
    entities a state map moved; a refused version prints its compatibility report (exit 2)."""
    state_map = load_state_map(args.map_file) if args.map_file else {}
    state_map.update(parse_state_map(args.map))
    settings = load_settings()
    try:
        with command_engine(settings, prepare=True) as engine:
            results = versions.sync_directory(
                engine,
                args.path,
                by=Actor.cli("machines sync"),
                state_map=state_map,
                dry_run=args.dry_run,
                upgrade_policy=args.upgrade_policy,
            )
    except IncompatibleVersionError as exc:
        print(exc.report.summary(), file=sys.stderr)
        print(
            "pystator: version refused; map each removed state that has entities with "
            "--map OLD=NEW, or try --dry-run",
            file=sys.stderr,
        )
        return 2
    for result in results:
        _print_published(result, as_json=args.json)
    return 1 if any(r.refused for r in results) else 0


def _print_published(result: versions.Published, *, as_json: bool) -> None:
    if as_json:
        print(json.dumps(result.to_dict(), default=str))
        return
    if result.dry_run and result.report is not None:
        verdict = "would be refused" if result.refused else "would be accepted"
        print(f"{result.report.summary()}\n{result.name}: dry run, {verdict}")
        return
    verdict = "new version" if result.created else "unchanged"
    pinned = ", pinned" if result.upgrade_policy == "pinned" else ""
    print(f"{result.name}: version {result.version} ({verdict}{pinned})")
    if result.migration is not None:
        for moved in result.migration.moved:
            print(
                f"  moved {moved.entity_id}: {moved.source_state} -> {moved.target_state} "
                f"(entity version {moved.entity_version})"
            )
        if result.migration.cancelled_timers:
            print(f"  cancelled {result.migration.cancelled_timers} armed timers")


def cmd_retire(args: argparse.Namespace) -> int:
    """``machines retire NAME`` (refused while the machine has pending work)."""
    with command_engine(load_settings()) as engine:
        record = versions.retire(engine, args.name, by=Actor.cli("machines retire"))
    print(f"{record.name}: retired (version {record.current_version} and older kept)")
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
            {
                "version": v.version,
                "by": v.created_by,
                "at": v.created_at.isoformat(),
                "upgrade_policy": v.upgrade_policy,
            }
            for v in detail.versions
        ],
        "definition": detail.version.definition,
    }
    print(json.dumps(data, indent=2))
    return 0
