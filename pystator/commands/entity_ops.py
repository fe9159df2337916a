"""``pystator entities export|import|purge|archive``: the HTTP entity operations from a shell.

Thin: each parses its arguments, calls one function of :mod:`pystator.services.entities` and
prints JSON. ``import`` takes the machine as workers apply it (the registry's current version,
else ``PYSTATOR_MACHINES``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from pystator.config.settings import load_settings
from pystator.fleet.composition import command_engine
from pystator.fsm_core.errors import EntityNotFoundError, InvalidEventError
from pystator.services import entities
from pystator.services.discovery import active_machine


def register_entity_ops(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``export``, ``import``, ``purge`` and ``archive`` to the ``entities`` group."""
    export = sub.add_parser("export", help="print one entity as an export document (JSON)")
    _key(export)
    export.add_argument("--output", "-o", type=Path, default=None, help="write to this file")
    export.set_defaults(func=cmd_export)

    restore = sub.add_parser("import", help="restore an entity from an export document")
    restore.add_argument("document", type=Path, help="the JSON file ('-' for stdin)")
    restore.add_argument("--entity", dest="entity_id", default=None, help="default: the file's")
    restore.set_defaults(func=cmd_import)

    purge = sub.add_parser("purge", help="delete an entity, its history and its armed timers")
    _key(purge)
    purge.set_defaults(func=cmd_purge)

    archive = sub.add_parser(
        "archive", help="export then purge in one transaction (the printed document is the copy)"
    )
    _key(archive)
    archive.add_argument("--output", "-o", type=Path, default=None, help="write to this file")
    archive.set_defaults(func=cmd_archive)


def _key(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("machine")
    parser.add_argument("entity_id")


def _write(data: Any, output: Path | None) -> None:
    text = json.dumps(data, indent=2, default=str, sort_keys=True)
    if output is None:
        print(text)
    else:
        output.write_text(text + "\n", encoding="utf-8")


def cmd_export(args: argparse.Namespace) -> int:
    """``entities export MACHINE ENTITY [-o FILE]``."""
    with command_engine(load_settings()) as engine:
        _write(entities.export(engine, args.machine, args.entity_id), args.output)
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    """``entities import FILE [--entity ID]``."""
    document = _read(args.document)
    machine_name = document.get("machine_name")
    entity_id = args.entity_id or document.get("entity_id")
    if not isinstance(machine_name, str) or not isinstance(entity_id, str):
        raise InvalidEventError("the document names no machine_name or entity_id")
    settings = load_settings()
    with command_engine(settings) as engine:
        machine = active_machine(settings, engine, machine_name)
        if machine is None:
            raise EntityNotFoundError(f"no machine {machine_name!r} in the registry")
        record = entities.import_document(engine, machine, entity_id, document)
    print(
        f"imported {record.machine}/{record.entity_id}: {record.state} (version {record.version})"
    )
    return 0


def _read(path: Path) -> dict[str, Any]:
    text = sys.stdin.read() if str(path) == "-" else path.read_text(encoding="utf-8")
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidEventError(f"{path}: not JSON ({exc})") from exc
    if not isinstance(document, dict):
        raise InvalidEventError(f"{path}: an export document is a JSON object")
    return document


def cmd_purge(args: argparse.Namespace) -> int:
    """``entities purge MACHINE ENTITY``."""
    with command_engine(load_settings()) as engine:
        deleted = entities.purge(engine, args.machine, args.entity_id)
    print(json.dumps({"deleted": deleted}, sort_keys=True))
    return 0


def cmd_archive(args: argparse.Namespace) -> int:
    """``entities archive MACHINE ENTITY [-o FILE]``: the document is printed (or written)."""
    with command_engine(load_settings()) as engine:
        archived = entities.archive(engine, args.machine, args.entity_id)
    _write(archived["document"], args.output)
    print(json.dumps({"deleted": archived["deleted"]}, sort_keys=True), file=sys.stderr)
    return 0


__all__ = ["register_entity_ops"]
