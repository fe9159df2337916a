"""``pystator validate``, ``pystator lint`` and ``pystator process``: the engine on the command line.

* ``pystator validate FILE…`` prints every problem of every file (exit 1), or one summary line
  per machine (exit 0); deprecated forms are listed as ``warning:`` lines.
* ``pystator lint FILE…`` prints every lint finding (``[WARNING] dead_end: …``): exit 0 when
  nothing reaches ``--fail-on`` (default: warning), 1 when something does, 2 when a file cannot
  be read or is not a valid definition.
* ``pystator process FILE STATE TRIGGER [--context JSON]`` prints the ``TransitionResult`` as
  JSON: exit 0 when the transition succeeded, 1 when it was rejected, 2 for bad input.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import warnings
from typing import Any

from pystator.fsm_core.actions import ActionRegistry
from pystator.fsm_core.errors import FSMError, MachineValidationError
from pystator.fsm_core.guards import GuardRegistry
from pystator.fsm_core.lint import SEVERITY_ORDER, LintSeverity, LintWarning, lint
from pystator.fsm_core.loading import read_document
from pystator.fsm_core.machine import StateMachine
from pystator.fsm_core.summary import result_to_dict, summarize
from pystator.plugins.builtins import register_builtins

EXIT_OK = 0
EXIT_REJECTED = 1
EXIT_INVALID = 1
EXIT_FINDINGS = 1
EXIT_USAGE = 2


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``validate`` and ``process`` commands."""
    validate = sub.add_parser("validate", help="check machine definitions (YAML or JSON)")
    validate.add_argument("files", nargs="+", metavar="FILE", help="machine definition file")
    validate.set_defaults(func=_validate)

    linter = sub.add_parser("lint", help="review machine definitions for likely mistakes")
    linter.add_argument("files", nargs="+", metavar="FILE", help="machine definition file")
    linter.add_argument(
        "--fail-on",
        choices=[s.value for s in LintSeverity],
        default=LintSeverity.WARNING.value,
        help="lowest severity that makes the exit code 1 (default: warning)",
    )
    linter.add_argument(
        "--guards", metavar="MODULE:ATTR", help="a GuardRegistry to check guard names against"
    )
    linter.add_argument(
        "--actions", metavar="MODULE:ATTR", help="an ActionRegistry to check action names against"
    )
    linter.add_argument(
        "--builtins",
        action="store_true",
        help="count the built-in guards and actions as registered (turns the name checks on)",
    )
    linter.set_defaults(func=_lint)

    process = sub.add_parser("process", help="compute one transition and print it as JSON")
    process.add_argument("file", metavar="FILE", help="machine definition file")
    process.add_argument("state", metavar="STATE", help="current state")
    process.add_argument("trigger", metavar="TRIGGER", help="event to apply")
    process.add_argument(
        "--context", default="{}", metavar="JSON", help="context as a JSON object (default: {})"
    )
    process.set_defaults(func=_process)


def _load(path: str) -> StateMachine:
    try:
        return StateMachine.from_file(path)
    except OSError as exc:
        raise _CliInputError(f"cannot read {path}: {exc.strerror or exc}") from exc


class _CliInputError(Exception):
    """A problem with the command's input (file missing, bad JSON): exit code 2."""


# --- validate --------------------------------------------------------------------------------


def _validate(args: argparse.Namespace) -> int:
    status = EXIT_OK
    for path in args.files:
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                machine = _load(path)
        except MachineValidationError as exc:
            status = EXIT_INVALID
            for problem in exc.problems:
                print(f"{path}: {problem}")
            continue
        except (FSMError, _CliInputError) as exc:
            status = EXIT_INVALID
            print(f"{path}: {exc}")
            continue
        print(summarize(machine))
        for warning in caught:  # the loader's message starts with the file's path
            print(f"warning: {warning.message}")
    return status


# --- lint ------------------------------------------------------------------------------------


def _lint(args: argparse.Namespace) -> int:
    try:
        guards, actions = _registries(args)
    except (ImportError, AttributeError, TypeError) as exc:
        print(f"pystator lint: {exc}", file=sys.stderr)
        return EXIT_USAGE
    threshold = SEVERITY_ORDER[LintSeverity(args.fail_on)]
    status = EXIT_OK
    for path in args.files:
        try:
            findings = lint(_document(path), guards=guards, actions=actions)
        except MachineValidationError as exc:
            status = EXIT_USAGE
            for problem in exc.problems:
                print(f"{path}: invalid: {problem}")
            continue
        except _CliInputError as exc:
            status = EXIT_USAGE
            print(f"{path}: {exc}")
            continue
        for finding in findings:
            print(f"{path}: {format_finding(finding)}")
        if not findings:
            print(f"{path}: no findings")
        if status == EXIT_OK and any(SEVERITY_ORDER[f.severity] >= threshold for f in findings):
            status = EXIT_FINDINGS
    return status


def format_finding(finding: LintWarning) -> str:
    """``[WARNING] dead_end: Non-terminal state 'review' has no outbound transitions``."""
    return f"[{finding.severity.value.upper()}] {finding.code}: {finding.message}"


def _document(path: str) -> Any:
    try:
        return read_document(path)
    except OSError as exc:
        raise _CliInputError(f"cannot read {path}: {exc.strerror or exc}") from exc


def _registries(args: argparse.Namespace) -> tuple[GuardRegistry | None, ActionRegistry | None]:
    guards = _imported(args.guards, GuardRegistry) if args.guards else None
    actions = _imported(args.actions, ActionRegistry) if args.actions else None
    if args.builtins:
        guards, actions = register_builtins(guards, actions)
    return guards, actions


def _imported(spec: str, kind: type[Any]) -> Any:
    module, _, attr = spec.partition(":")
    if not module or not attr:
        raise ImportError(f"{spec!r}: expected MODULE:ATTR")
    value = getattr(importlib.import_module(module), attr)
    if not isinstance(value, kind):
        raise TypeError(f"{spec} is a {type(value).__name__}, not a {kind.__name__}")
    return value


# --- process ---------------------------------------------------------------------------------


def _process(args: argparse.Namespace) -> int:
    try:
        context = json.loads(args.context)
    except json.JSONDecodeError as exc:
        return _usage(f"--context is not valid JSON: {exc}")
    if not isinstance(context, dict):
        return _usage(f"--context must be a JSON object, got {type(context).__name__}")
    try:
        machine = _load(args.file)
    except _CliInputError as exc:
        return _usage(str(exc))
    result = machine.process(args.state, args.trigger, context)
    print(json.dumps(result_to_dict(result), indent=2, default=str))
    return EXIT_OK if result.success else EXIT_REJECTED


def _usage(message: str) -> int:
    print(f"pystator process: {message}", file=sys.stderr)
    return EXIT_USAGE
