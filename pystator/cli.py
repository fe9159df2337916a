"""The ``pystator`` command line: one argparse tree, subcommands registered by area modules.

Each module in :data:`COMMAND_MODULES` exposes ``register(subparsers)`` and sets
``func(args) -> int`` on the parsers it adds. A module whose optional dependencies are missing
is skipped at registration and reported if the user asks for its command.

**Only the module of the command run is imported.** The command modules import what their
commands need (FastAPI and uvicorn, Celery, Alembic, …): importing all thirteen cost over two
seconds before any command ran, and a worker's start-up paid it. :data:`COMMANDS` lists every
command with its one-line help, so ``pystator --help`` shows them all without importing any;
``pystator worker …`` imports :mod:`pystator.commands.worker` alone. ``tests/cli`` checks the
table against what the modules register.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from pystator.fsm_core.errors import FSMError

#: Command module -> the commands it registers, each with the help ``pystator --help`` shows.
COMMANDS: dict[str, dict[str, str]] = {
    "pystator.commands.engine": {
        "validate": "check machine definitions (YAML or JSON)",
        "lint": "review machine definitions for likely mistakes",
        "process": "compute one transition and print it as JSON",
    },
    "pystator.commands.db": {"db": "database schema migrations (Alembic)"},
    "pystator.commands.worker": {
        "worker": "run a worker that applies submitted events",
        "submit": "submit one event to the fleet",
        "apply-data": "queue a data update (routed by the machine's when rules)",
        "relay": "re-publish nudges for stranded events; sweep the outbox",
    },
    "pystator.commands.events": {
        "events": "inspect and repair worker events",
        "actions": "inspect and repair outbox actions",
        "entities": "inspect, export, import, purge, archive entities",
    },
    "pystator.commands.health": {"health": "check this host's worker (exit 0 healthy, 1 not)"},
    "pystator.commands.retention": {
        "prune": "delete rows past their retention window (PYSTATOR_RETENTION_*)"
    },
    "pystator.commands.demo": {"demo": "run the embedded worker fleet on a few thousand events"},
    "pystator.commands.machines": {"machines": "the machine registry in the database"},
    "pystator.commands.replay": {
        "replay": "re-run recorded history through a candidate definition (exit 1 on diff)"
    },
    "pystator.commands.api": {
        "api": "serve the HTTP API (REST, OpenAPI at /docs)",
        "api-keys": "API keys of the HTTP API",
        "token": "print a JWT signed with PYSTATOR_API_JWT_SECRET",
        "config": "effective settings",
    },
    "pystator.commands.viz": {"viz": "draw a machine as Mermaid, Graphviz DOT or SCXML"},
    "pystator.commands.docs": {
        "docs": "build the documentation site when needed and serve it (no network)"
    },
    "pystator.commands.discover": {"discover": "infer a machine from observed states"},
}
COMMAND_MODULES: tuple[str, ...] = tuple(COMMANDS)


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """Build the argument parser (commands whose extras are missing are left out).

    Without ``argv``, every command module is imported and registers its commands in full.
    Given the command line ``argv``, only the module of the command it names is; the other
    commands are listed by name and help only (what ``pystator --help`` shows).
    """
    parser = argparse.ArgumentParser(
        prog="pystator", description="Configuration-driven state machines and their worker fleet."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    wanted = None if argv is None else _command_of(argv)
    for name, commands in COMMANDS.items():
        if argv is not None and wanted not in commands:
            for command, help_text in commands.items():
                sub.add_parser(command, help=help_text, add_help=False)
            continue
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.startswith("pystator.commands"):
                continue  # area not built yet
            _register_missing(sub, commands, exc)
            continue
        module.register(sub)
    return parser


def _command_of(argv: Sequence[str]) -> str | None:
    """The command ``argv`` names: its first word that is not an option (the top level takes
    no option with a value)."""
    return next((word for word in argv if not word.startswith("-")), None)


def _register_missing(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    commands: dict[str, str],
    exc: ModuleNotFoundError,
) -> None:
    hint = f"this command needs the optional dependency {exc.name!r}: pip install 'pystator[all]'"
    for command in commands:
        p = sub.add_parser(command, help=f"(unavailable: {exc.name} not installed)")
        p.set_defaults(func=lambda _args: _fail(hint))


def _fail(message: str) -> int:
    print(f"pystator: {message}", file=sys.stderr)
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``pystator`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    try:
        return int(func(args) or 0)
    except FSMError as exc:
        return _fail(str(exc))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
