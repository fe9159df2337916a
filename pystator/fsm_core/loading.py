"""From YAML/JSON text or files to a validated :class:`MachineDefinition`.

Raw document → shape check (:mod:`definition`) → semantic check (:mod:`validation`). Every
problem found along the way is reported at once in one :class:`MachineValidationError`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from pystator.fsm_core.definition import MachineDefinition, parse_definition
from pystator.fsm_core.errors import ConfigProblem, MachineValidationError
from pystator.fsm_core.validation import validate_definition


def load_definition(raw: Any, *, source: str | None = None) -> MachineDefinition:
    """Check ``raw`` completely; raise :class:`MachineValidationError` listing every problem."""
    definition, problems = parse_definition(raw)
    if definition is not None:
        problems.extend(validate_definition(definition))
    if problems or definition is None:
        raise MachineValidationError(_dedupe(problems), source=source)
    return definition


def parse_yaml(text: str, *, source: str | None = None) -> Any:
    """The document in ``text``; a syntax error becomes a located validation problem."""
    try:
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown position"
        problem = exc.problem or "invalid YAML"
        raise MachineValidationError(
            [ConfigProblem("", f"YAML syntax error at {where}: {problem}")], source=source
        ) from exc
    except yaml.YAMLError as exc:
        raise MachineValidationError(
            [ConfigProblem("", f"YAML error: {exc}")], source=source
        ) from exc


def parse_json(text: str, *, source: str | None = None) -> Any:
    """The document in ``text``; a syntax error becomes a located validation problem."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise MachineValidationError(
            [
                ConfigProblem(
                    "", f"JSON syntax error at line {exc.lineno}, column {exc.colno}: {exc.msg}"
                )
            ],
            source=source,
        ) from exc


def read_text(path: str | Path) -> str:
    """The file's text (UTF-8); ``OSError`` propagates so callers can say the file is missing."""
    return Path(path).read_text(encoding="utf-8")


def _dedupe(problems: list[ConfigProblem]) -> list[ConfigProblem]:
    seen: set[ConfigProblem] = set()
    out = []
    for problem in problems:
        if problem not in seen:
            seen.add(problem)
            out.append(problem)
    return out
