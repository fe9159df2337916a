"""From YAML/JSON text or files to a validated :class:`MachineDefinition`.

Raw document → shape check (:mod:`definition`) → semantic check (:mod:`validation`). Every
problem found along the way is reported at once in one :class:`MachineValidationError`.
"""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path
from typing import Any

import yaml

from pystator.fsm_core.definition import MachineDefinition
from pystator.fsm_core.errors import (
    ConfigProblem,
    DefinitionDeprecationWarning,
    DefinitionWarning,
    MachineValidationError,
)
from pystator.fsm_core.parsing import parse_definition
from pystator.fsm_core.validation import validate_definition

_NOT_NAME = re.compile(r"[^A-Za-z0-9_.\-]+")


def check_definition(
    raw: Any, *, source: str | None = None
) -> tuple[MachineDefinition | None, list[ConfigProblem], list[ConfigProblem]]:
    """Parse and validate ``raw`` without raising: (definition, problems, warnings)."""
    definition, problems, deprecations, notes = parse_definition(
        raw, default_name=default_machine_name(source)
    )
    if definition is not None:
        problems.extend(validate_definition(definition))
    return definition, _dedupe(problems), [*deprecations, *notes]


def load_definition(raw: Any, *, source: str | None = None) -> MachineDefinition:
    """Check ``raw`` completely; raise :class:`MachineValidationError` listing every problem.

    Deprecated forms (:class:`DefinitionDeprecationWarning`, naming the replacement) and keys
    the engine ignores (:class:`DefinitionWarning`) are warned about once the definition loads.
    """
    definition, problems, deprecations, notes = parse_definition(
        raw, default_name=default_machine_name(source)
    )
    if definition is not None:
        problems.extend(validate_definition(definition))
    if problems or definition is None:
        raise MachineValidationError(_dedupe(problems), source=source)
    where = f"{source}: " if source else ""
    for problem in deprecations:
        warnings.warn(f"{where}{problem}", DefinitionDeprecationWarning, stacklevel=3)
    for problem in notes:
        warnings.warn(f"{where}{problem}", DefinitionWarning, stacklevel=3)
    return definition


def default_machine_name(source: str | None) -> str | None:
    """The name of a machine whose ``meta.machine_name`` is absent: its file's stem, if any."""
    if not source or source.startswith("<"):
        return None
    stem = _NOT_NAME.sub("_", Path(source).stem).strip("_")
    return stem or None


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
    """The file's text (UTF-8); ``OSError`` propagates so callers can say the file is missing.

    Bytes that are not UTF-8 raise :class:`MachineValidationError` naming where they start.
    """
    data = Path(path).read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        problem = ConfigProblem(
            "",
            f"not UTF-8 text: byte 0x{data[exc.start]:02x} at line {line}, column {column} "
            "(save the file as UTF-8)",
        )
        raise MachineValidationError([problem], source=str(path)) from exc


def _dedupe(problems: list[ConfigProblem]) -> list[ConfigProblem]:
    seen: set[ConfigProblem] = set()
    out = []
    for problem in problems:
        if problem not in seen:
            seen.add(problem)
            out.append(problem)
    return out


def validate_config(config: Any, strict: bool = True) -> list[str]:
    """Every problem of ``config`` as ``path: message`` lines.

    ``strict=True`` raises :class:`MachineValidationError` instead when there is any (and returns
    ``[]`` otherwise); ``strict=False`` only reports.
    """
    _definition, problems, _warnings = check_definition(config)
    if problems and strict:
        raise MachineValidationError(problems)
    return [str(p) for p in problems]


#: The documented alias of :func:`validate_config`.
validate_machine_config = validate_config


class ConfigValidator:
    """Object form of :func:`validate_config` (``ConfigValidator().validate(config)``)."""

    def validate(self, config: Any) -> list[str]:
        """Every problem of ``config`` (an empty list when it would load)."""
        return validate_config(config, strict=False)
