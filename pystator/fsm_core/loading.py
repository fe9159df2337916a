"""From YAML/JSON text or files to a validated :class:`MachineDefinition`.

Text → document (:func:`parse_yaml`, the one YAML reader, or :func:`parse_json`; both refuse a
document past the limits of :mod:`~pystator.fsm_core.limits`) → shape check (:mod:`definition`)
→ semantic check (:mod:`validation`). Every problem found along the way is reported at once in
one :class:`MachineValidationError`.
"""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path
from typing import Any

from pystator.fsm_core.definition import MachineDefinition
from pystator.fsm_core.document_size import oversize
from pystator.fsm_core.errors import (
    ConfigProblem,
    DefinitionDeprecationWarning,
    DefinitionWarning,
    MachineValidationError,
)
from pystator.fsm_core.limits import MAX_DEFINITION_BYTES, MAX_DEFINITION_DEPTH
from pystator.fsm_core.parsing import parse_definition
from pystator.fsm_core.validation import validate_definition
from pystator.fsm_core.yaml_loader import parse_yaml

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


def parse_json(text: str, *, source: str | None = None) -> Any:
    """The document in ``text``; a syntax error, or a document past the size limits
    (:mod:`~pystator.fsm_core.limits`), becomes a located validation problem."""
    size = len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_DEFINITION_BYTES:
        raise _refused(
            ConfigProblem(
                "", f"the document is {size:,} bytes; at most {MAX_DEFINITION_BYTES:,} are read"
            ),
            source,
        )
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno}, column {exc.colno}"
        raise _refused(
            ConfigProblem("", f"JSON syntax error at {where}: {exc.msg}"), source
        ) from exc
    except RecursionError:
        problem = ConfigProblem("", f"the document nests deeper than {MAX_DEFINITION_DEPTH} levels")
        raise _refused(problem, source) from None
    too_large = oversize(document)
    if too_large is not None:
        raise _refused(too_large, source)
    return document


def read_text(path: str | Path) -> str:
    """The file's text (UTF-8); ``OSError`` propagates so callers can say the file is missing.

    A file larger than :data:`~pystator.fsm_core.limits.MAX_DEFINITION_BYTES` (only that much
    is read) or whose bytes are not UTF-8 raises :class:`MachineValidationError` saying so.
    """
    with Path(path).open("rb") as file:
        data = file.read(MAX_DEFINITION_BYTES + 1)
    if len(data) > MAX_DEFINITION_BYTES:
        problem = ConfigProblem("", f"the file is larger than {MAX_DEFINITION_BYTES:,} bytes")
        raise _refused(problem, str(path))
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
        raise _refused(problem, str(path)) from exc


def read_document(path: str | Path) -> Any:
    """The document in a definition file: JSON when its name ends in ``.json``, else YAML
    (not yet validated). ``OSError`` propagates; the rest is a :class:`MachineValidationError`."""
    text = read_text(path)
    if str(path).endswith(".json"):
        return parse_json(text, source=str(path))
    return parse_yaml(text, source=str(path))


def _refused(problem: ConfigProblem, source: str | None) -> MachineValidationError:
    return MachineValidationError([problem], source=source)


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


__all__ = [
    "ConfigValidator",
    "check_definition",
    "default_machine_name",
    "load_definition",
    "parse_json",
    "parse_yaml",
    "read_document",
    "read_text",
    "validate_config",
]
