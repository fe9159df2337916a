"""``pystator replay MACHINE --candidate FILE``: recorded history through a candidate definition.

Prints the report (``--json`` for the whole of it) and exits 1 when anything diverged that the
``--allow`` file does not accept, so it can gate a CI pipeline.
"""

from __future__ import annotations

import argparse
import json
from datetime import datetime
from pathlib import Path

from pystator.config.settings import load_settings
from pystator.fleet.composition import command_engine
from pystator.fsm_core.clock import as_utc
from pystator.fsm_core.errors import ConfigurationError
from pystator.fsm_core.loading import read_document
from pystator.registry.machines import MachineRegistry, load_app
from pystator.registry.versions import load_document
from pystator.services import replay

#: Exit code when the candidate diverged.
DIVERGED_EXIT = 1


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``replay`` command."""
    parser = sub.add_parser(
        "replay", help="re-run recorded history through a candidate definition (exit 1 on diff)"
    )
    parser.add_argument("machine", metavar="MACHINE")
    parser.add_argument("--candidate", required=True, metavar="FILE", help="definition to test")
    parser.add_argument("--since", type=_instant, default=None, help="ISO time: rows since then")
    parser.add_argument("--entities", type=int, default=None, metavar="N", help="at most N")
    parser.add_argument(
        "--sample", type=float, default=1.0, help="fraction of entities, 0 < F <= 1 (default 1)"
    )
    parser.add_argument("--allow", default=None, metavar="FILE", help="accepted divergences")
    parser.add_argument("--app", default=None, help="module:factory returning guards and actions")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.set_defaults(func=cmd_replay)


def _instant(text: str) -> datetime:
    try:
        return as_utc(datetime.fromisoformat(text))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an ISO time: {text!r}") from exc


def cmd_replay(args: argparse.Namespace) -> int:
    """Replay and print; 0 when nothing diverged (allowed divergences aside)."""
    settings = load_settings()
    registry = MachineRegistry()
    app = args.app or settings.app
    if app:
        registry.bind(*load_app(app))
    try:
        document = load_document(Path(args.candidate))
    except OSError as exc:
        raise ConfigurationError(f"--candidate {args.candidate}: {exc}") from exc
    candidate = replay.candidate_machine(
        document,
        machine=args.machine,
        bind=registry.bind_to,
        source=args.candidate,
    )
    allow = replay.parse_allowances(_read(args.allow)) if args.allow else ()
    selection = replay.ReplayFilter(since=args.since, entities=args.entities, sample=args.sample)
    with command_engine(settings) as engine:
        report = replay.replay(engine, args.machine, candidate, selection=selection, allow=allow)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(_text(report))
    return 0 if report.ok else DIVERGED_EXIT


def _read(path: str) -> object:
    try:
        return read_document(Path(path))
    except OSError as exc:
        raise ConfigurationError(f"--allow {path}: {exc}") from exc


def _text(report: replay.ReplayReport) -> str:
    lines = [
        f"{report.machine}: {report.transitions} transitions of {report.entities} entities: "
        f"{report.matched} matched, {report.diverged} diverged, {report.allowed} allowed, "
        f"{report.skipped} skipped"
    ]
    for key in sorted(report.groups):
        group = report.groups[key]
        parts = [f"{group.matched} matched"]
        parts += [f"{n} {kind}" for kind, n in sorted(group.diverged.items())]
        parts += [f"{n} {kind} (allowed)" for kind, n in sorted(group.allowed.items())]
        parts += [f"{n} skipped: {why}" for why, n in sorted(group.skipped.items())]
        lines.append(f"  {group.state} --{group.trigger}-->  " + ", ".join(parts))
        for kind in (*sorted(group.diverged), *sorted(group.skipped)):
            example = group.examples[kind]
            lines.append(
                f"      {kind}: entity {example.entity_id!r} event {example.event_id} "
                f"(recorded {example.recorded}, candidate {example.candidate})"
            )
    lines.append("OK" if report.ok else "DIVERGED")
    return "\n".join(lines)
