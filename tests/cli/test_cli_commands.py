"""The command table of ``pystator.cli``: it lists exactly what each command module registers,
``pystator --help`` imports no command module, and ``pystator worker``'s module leaves out what
a worker does not need to start (FastAPI, the OpenTelemetry instrumentations, Alembic, the ORM).
"""

from __future__ import annotations

import argparse
import importlib
import subprocess
import sys

import pytest

from pystator.cli import COMMANDS, build_parser, main


@pytest.mark.parametrize("module", sorted(COMMANDS))
def test_the_table_lists_what_the_module_registers(module: str) -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers()
    importlib.import_module(module).register(sub)
    registered = {action.dest: action.help for action in sub._choices_actions}
    assert registered == COMMANDS[module]


def test_the_parser_for_a_command_line_registers_that_command_in_full() -> None:
    args = build_parser(["worker", "--concurrency", "3"]).parse_args(
        ["worker", "--concurrency", "3"]
    )
    assert args.concurrency == 3 and callable(args.func)
    help_text = build_parser().format_help()  # the full parser: every module imported
    for commands in COMMANDS.values():
        for command in commands:
            assert command in help_text


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    for commands in COMMANDS.values():
        for command, help_text in commands.items():
            assert command in out
            assert help_text.split()[0] in out


def imported_after(code: str) -> set[str]:
    """The modules a fresh interpreter holds after running ``code``."""
    script = f"import sys\n{code}\nprint('\\n'.join(sorted(sys.modules)))\n"
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    return set(done.stdout.split())


def test_help_imports_no_command_module() -> None:
    code = "from pystator.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass"
    modules = imported_after(code)
    assert not {m for m in modules if m.startswith("pystator.commands.")}
    assert not {"celery", "fastapi", "sqlalchemy", "uvicorn"} & modules


def test_the_worker_command_imports_only_what_a_worker_starts_with() -> None:
    modules = imported_after("import pystator.commands.worker")
    heavy = {"fastapi", "uvicorn", "alembic", "sqlalchemy.orm", "sqlalchemy.ext.asyncio"}
    assert not heavy & modules
    assert not {m for m in modules if m.startswith("opentelemetry.instrumentation")}
