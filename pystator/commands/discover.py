"""``pystator discover ingest|build|show|diff``: discovery from the command line.

``ingest FILE`` records a JSONL or CSV file's observations (or, with ``--records``, raw records a
machine's ``when:`` rules classify) in the discovery store; ``build MACHINE`` infers and stores a
candidate from those observations or from the fleet's ``transition_history``; ``show`` prints a
stored candidate (``--definition``: its machine definition as YAML, for ``pystator validate`` and
``pystator viz``); ``diff`` compares it with the active machine. Exit codes: ``ingest`` 1 when a
line was refused (the others are recorded), ``diff`` 1 when the edges differ.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from pystator.commands import cli_principal
from pystator.config.settings import Settings, load_settings
from pystator.fleet.composition import command_engine
from pystator.fsm_core.errors import DiscoveryError, InvalidObservationError, NotFoundError
from pystator.fsm_core.yaml_loader import dump_yaml
from pystator.registry.candidates import register_candidate
from pystator.services import discovery
from pystator.services.discovery import (
    BuildScope,
    BuiltDiscoveryCandidate,
    DiscoveryDesk,
    InferenceThresholds,
)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``discover`` command group."""
    group = sub.add_parser("discover", help="infer a machine from observed states")
    dsub = group.add_subparsers(dest="discover_command", metavar="ACTION", required=True)

    ingest = dsub.add_parser("ingest", help="record a JSONL or CSV file of observations")
    ingest.add_argument("file", metavar="FILE", type=Path)
    ingest.add_argument("--format", choices=discovery.FILE_FORMATS, help="default: by suffix")
    ingest.add_argument("--machine", help="the machine of lines that name none")
    ingest.add_argument(
        "--records",
        action="store_true",
        help="lines are raw records: classify them with --machine's when rules",
    )
    ingest.add_argument("--event-id-field", help="records: the field that makes a re-send a no-op")
    ingest.set_defaults(func=cmd_ingest)

    build = dsub.add_parser("build", help="infer and store a candidate of MACHINE")
    build.add_argument("machine")
    build.add_argument("--source", choices=discovery.SOURCES, default="observations")
    build.add_argument("--since", type=_time, help="history: from this ISO 8601 time")
    build.add_argument("--until", type=_time, help="history: before this ISO 8601 time")
    build.add_argument("--entity", action="append", dest="entities", help="only this entity")
    build.add_argument("--min-edge-count", type=int)
    build.add_argument("--min-confidence", type=float)
    build.add_argument(
        "--register",
        action="store_true",
        help="also store it as a version of the machine in the registry (never the current one)",
    )
    build.add_argument("--json", action="store_true", help="the whole candidate as JSON")
    build.set_defaults(func=cmd_build)

    show = dsub.add_parser("show", help="a stored candidate of MACHINE")
    show.add_argument("machine")
    show.add_argument("--version", type=int, help="default: the latest")
    how = show.add_mutually_exclusive_group()
    how.add_argument("--json", action="store_true", help="the whole candidate as JSON")
    how.add_argument("--definition", action="store_true", help="its machine definition (YAML)")
    show.set_defaults(func=cmd_show)

    diff = dsub.add_parser("diff", help="a candidate against the active machine")
    diff.add_argument("machine")
    diff.add_argument("--version", type=int, help="the candidate's (default: the latest)")
    diff.add_argument("--json", action="store_true")
    diff.set_defaults(func=cmd_diff)


def _time(text: str) -> datetime:
    try:
        return discovery.parse_time(text, datetime.min)
    except InvalidObservationError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


@contextmanager
def _desk(settings: Settings) -> Iterator[DiscoveryDesk]:
    desk = DiscoveryDesk(settings)
    try:
        yield desk
    finally:
        desk.close()


def cmd_ingest(args: argparse.Namespace) -> int:
    """``discover ingest FILE``: counts, then the first refused lines with their reasons."""
    if not args.file.is_file():
        raise DiscoveryError(f"{args.file}: no such file")
    if args.records and not args.machine:
        raise DiscoveryError("--records needs --machine (its when rules classify the records)")
    if args.event_id_field and not args.records:
        raise DiscoveryError("--event-id-field applies to --records only")
    settings = load_settings()
    classify_with = None
    if args.records:
        with command_engine(settings, prepare=True) as engine:
            classify_with = discovery.active_machine(settings, engine, args.machine)
        if classify_with is None:
            raise NotFoundError(f"no machine {args.machine!r} to classify the records with")
    with _desk(settings) as desk:
        result = discovery.ingest_file(
            desk.engine,
            args.file,
            kind=args.format,
            machine_name=args.machine,
            classify_with=classify_with,
            event_id_field=args.event_id_field,
        )
    print(
        f"{args.file}: {result.total} lines, {result.accepted} recorded, "
        f"{result.duplicates} duplicates, {result.skipped} without a state, "
        f"{result.errors} refused"
    )
    for error in result.error_details:
        print(f"  line {error.index}: {error.reason}", file=sys.stderr)
    return 1 if result.errors else 0


def cmd_build(args: argparse.Namespace) -> int:
    """``discover build MACHINE``: the candidate's summary and edges (or JSON)."""
    settings = load_settings()
    with _desk(settings) as desk:
        defaults = desk.engine.thresholds
        scope = BuildScope(
            machine_name=args.machine,
            source=args.source,
            entity_ids=None if not args.entities else tuple(args.entities),
            thresholds=InferenceThresholds(
                min_edge_count=args.min_edge_count or defaults.min_edge_count,
                min_confidence=(
                    defaults.min_confidence if args.min_confidence is None else args.min_confidence
                ),
            ),
            since=args.since,
            until=args.until,
        )
        with command_engine(settings, prepare=True) as engine:
            machine = discovery.active_machine(settings, engine, args.machine)
            candidate = discovery.build(
                desk.engine,
                scope,
                fleet_url=settings.database_url,
                initial_state=None if machine is None else machine.get_initial_state(),
                created_by=cli_principal(),
            )
            registered = (
                register_candidate(engine, candidate.config, by=cli_principal())
                if args.register
                else None
            )
    if args.json:
        print(json.dumps(_full(candidate), indent=2))
    else:
        _print_candidate(candidate)
    if registered is not None:
        verdict = "stored" if registered.created else "already stored"
        print(
            f"registry: version {registered.version} of {registered.name} ({verdict}); "
            f"the current version stays {registered.current_version}"
        )
    return 0


def _full(candidate: BuiltDiscoveryCandidate) -> dict[str, Any]:
    return {
        **discovery.candidate_summary(candidate),
        "config": dict(candidate.config),
        "edges": [e.to_dict() for e in candidate.edges],
    }


def _print_candidate(candidate: BuiltDiscoveryCandidate) -> None:
    t = candidate.thresholds
    print(
        f"{candidate.machine_name} candidate v{candidate.version}: "
        f"{candidate.observation_count} observations of {candidate.entity_count} entities "
        f"({candidate.source}); {len(candidate.kept_edges)} edges kept, "
        f"{len(candidate.dropped_edges)} dropped "
        f"(min_edge_count {t.min_edge_count}, min_confidence {t.min_confidence})"
    )
    print(
        f"initial: {candidate.initial_state}; terminal: "
        f"{', '.join(candidate.terminal_states) or '-'}; triggers {candidate.trigger_names}"
    )
    for edge in candidate.edges:
        mark = "+" if edge.kept else "-"
        reason = "" if edge.kept else f"  ({edge.reason})"
        print(
            f"  {mark} {edge.source_state} -> {edge.destination_state}  [{edge.trigger}]  "
            f"count {edge.count}  confidence {edge.confidence:.3f}{reason}"
        )


def _candidate(desk: DiscoveryDesk, machine: str, version: int | None) -> BuiltDiscoveryCandidate:
    candidate = desk.engine.get_candidate(machine, version)
    if candidate is None:
        which = "no candidate" if version is None else f"no candidate version {version}"
        raise NotFoundError(f"machine {machine!r} has {which}: run pystator discover build")
    return candidate


def cmd_show(args: argparse.Namespace) -> int:
    """``discover show MACHINE``."""
    with _desk(load_settings()) as desk:
        candidate = _candidate(desk, args.machine, args.version)
    if args.definition:
        print(dump_yaml(dict(candidate.config)), end="")
    elif args.json:
        print(json.dumps(_full(candidate), indent=2))
    else:
        _print_candidate(candidate)
    return 0


def cmd_diff(args: argparse.Namespace) -> int:
    """``discover diff MACHINE``: unused and unexpected edges; 1 when there are any."""
    settings = load_settings()
    with _desk(settings) as desk:
        candidate = _candidate(desk, args.machine, args.version)
    with command_engine(settings, prepare=True) as engine:
        machine = discovery.active_machine(settings, engine, args.machine)
    if machine is None:
        raise NotFoundError(f"no active machine {args.machine!r} to compare with")
    diff = discovery.compare(candidate, machine)
    if args.json:
        print(json.dumps(diff.to_dict(), indent=2))
        return 0 if diff.clean else 1
    active = "" if machine.registry_version is None else f" v{machine.registry_version}"
    print(f"{args.machine}: candidate v{candidate.version} against the active machine{active}")
    print(f"  {len(diff.common)} edges both have")
    for edge in diff.unexpected:
        print(
            f"  unexpected  {edge.source_state} -> {edge.destination_state}  "
            f"count {edge.count}  confidence {edge.confidence:.3f}  (observed, not allowed)"
        )
    for edge in diff.unexpected_rare:
        print(
            f"  rare        {edge.source_state} -> {edge.destination_state}  "
            f"count {edge.count}  (observed, not allowed, below the thresholds)"
        )
    for source, destination in diff.unused:
        print(f"  unused      {source} -> {destination}  (allowed, never observed)")
    return 0 if diff.clean else 1


__all__ = ["register"]
