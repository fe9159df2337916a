"""Check that the commands a deployment file runs are real ``pystator`` commands."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pytest

from pystator.cli import build_parser

#: Pieces being built on main alongside the deployment files (issue 14's contract): a command
#: using one of them is skipped until it lands; every other command must parse now.
PENDING: dict[str, str | None] = {}


def _pending(commands: dict[str, Any], argv: tuple[str, ...]) -> bool:
    if argv[0] not in commands:
        return argv[0] in PENDING
    option = PENDING.get(argv[0])
    known = commands[argv[0]]._option_string_actions
    return option is not None and option in argv and option not in known


def check_commands(argvs: Iterable[tuple[str, ...]]) -> None:
    """Parse every ``argv`` (without the leading ``pystator``) with the real CLI parser."""
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    argvs = sorted(set(argvs))
    pending = [" ".join(a) for a in argvs if _pending(commands, a)]
    for argv in argvs:
        if not _pending(commands, argv):
            assert callable(parser.parse_args(list(argv)).func), argv
    if pending:
        pytest.skip(f"not on main yet (the other commands parse): {pending}")
