"""The ``pystator`` command line: one argparse tree, subcommands registered by area modules.

Each module in :data:`COMMAND_MODULES` exposes ``register(subparsers)`` and sets
``func(args) -> int`` on the parsers it adds. A module whose optional dependencies are missing
is skipped at registration and reported if the user asks for its command.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from pystator.fsm_core.errors import FSMError

COMMAND_MODULES: tuple[str, ...] = (
    "pystator.commands.engine",  # validate, lint, process
    "pystator.commands.db",  # db upgrade/downgrade/current/history
    "pystator.commands.worker",  # worker, submit, relay
    "pystator.commands.events",  # events …, entities …, actions …
    "pystator.commands.health",  # health
    "pystator.commands.retention",  # prune
    "pystator.commands.demo",  # demo
    "pystator.commands.machines",  # machines sync/list/show
    "pystator.commands.replay",  # replay MACHINE --candidate FILE
    "pystator.commands.api",  # api, api-keys, token, config show
    "pystator.commands.viz",  # viz
    "pystator.commands.docs",  # docs
    "pystator.commands.discover",  # discover ingest/build/show/diff
)


def build_parser() -> argparse.ArgumentParser:
    """Build the full argument parser (commands whose extras are missing are left out)."""
    parser = argparse.ArgumentParser(
        prog="pystator", description="Configuration-driven state machines and their worker fleet."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.startswith("pystator.commands"):
                continue  # area not built yet
            _register_missing(sub, name, exc)
            continue
        module.register(sub)
    return parser


def _register_missing(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], module: str, exc: ModuleNotFoundError
) -> None:
    hint = f"this command needs the optional dependency {exc.name!r}: pip install 'pystator[all]'"
    area = module.rsplit(".", 1)[-1]
    p = sub.add_parser(area, help=f"(unavailable: {exc.name} not installed)")
    p.set_defaults(func=lambda _args: _fail(hint))


def _fail(message: str) -> int:
    print(f"pystator: {message}", file=sys.stderr)
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``pystator`` console script."""
    parser = build_parser()
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
