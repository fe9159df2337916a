"""Shared helpers of the definition parser: collect problems with their paths, never stop early."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pystator.fsm_core.delays import DelayError, parse_delay
from pystator.fsm_core.errors import ConfigProblem
from pystator.fsm_core.naming import describe_name_problem


class Reader:
    """Collects problems (errors), deprecations and notes while a document is walked once."""

    def __init__(self) -> None:
        self.problems: list[ConfigProblem] = []
        self.deprecations: list[ConfigProblem] = []
        self.notes: list[ConfigProblem] = []  # loads, but has no effect (warned)

    def problem(self, path: str, message: str) -> None:
        """Record an error at ``path``."""
        self.problems.append(ConfigProblem(path, message))

    def deprecated(self, path: str, message: str) -> None:
        """Record the use of a form that a documented key replaces (warned on load)."""
        self.deprecations.append(ConfigProblem(path, message))

    def note(self, path: str, message: str) -> None:
        """Record something that loads but is ignored (warned on load)."""
        self.notes.append(ConfigProblem(path, message))

    def mapping(self, value: Any, path: str, what: str) -> Mapping[str, Any] | None:
        """``value`` if it is a mapping, else None and a problem."""
        if isinstance(value, Mapping):
            return value
        self.problem(path, f"{what} must be a mapping, got {type_name(value)}")
        return None

    def unknown_keys(self, raw: Mapping[str, Any], allowed: frozenset[str], path: str) -> None:
        """A problem for every key of ``raw`` outside ``allowed``."""
        for key in raw:
            if key not in allowed:
                known = ", ".join(sorted(allowed))
                where = f"{path}.{key}" if path else str(key)
                self.problem(where, f"unknown key (known: {known})")

    def name(self, value: Any, path: str, what: str) -> str | None:
        """``value`` if it is a valid name, else None and a problem."""
        problem = describe_name_problem(value, what)
        if problem is not None:
            self.problem(path, problem)
            return None
        assert isinstance(value, str)
        return value

    def optional_text(self, raw: Mapping[str, Any], key: str, path: str) -> str | None:
        """``raw[key]`` if absent or a string, else None and a problem."""
        value = raw.get(key)
        if value is None or isinstance(value, str):
            return value
        self.problem(join(path, key), f"must be a string, got {type_name(value)}")
        return None

    def boolean(self, raw: Mapping[str, Any], key: str, path: str, default: bool) -> bool:
        """``raw[key]`` as a boolean (``default`` when absent)."""
        value = raw.get(key, default)
        if isinstance(value, bool):
            return value
        self.problem(join(path, key), f"must be true or false, got {value!r}")
        return default

    def optional_boolean(self, raw: Mapping[str, Any], key: str, path: str) -> bool | None:
        """``raw[key]`` as a boolean, or None when absent or null."""
        value = raw.get(key)
        if value is None or isinstance(value, bool):
            return value
        self.problem(join(path, key), f"must be true or false, got {value!r}")
        return None

    def count(self, raw: Mapping[str, Any], key: str, path: str) -> int | None:
        """``raw[key]`` as a non-negative integer, or None when absent."""
        value = raw.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            self.problem(join(path, key), f"must be a non-negative integer, got {value!r}")
            return None
        return value

    def seconds(self, raw: Mapping[str, Any], key: str, path: str) -> float | None:
        """``raw[key]`` as a positive number of seconds, or None when absent."""
        value = raw.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
            self.problem(join(path, key), f"must be a number of seconds > 0, got {value!r}")
            return None
        return float(value)

    def delay(self, value: Any, path: str) -> int | None:
        """A delay in milliseconds (``5000``, ``"5s"``), or None and a problem."""
        try:
            return parse_delay(value)
        except DelayError as exc:
            self.problem(path, str(exc))
            return None

    def items(self, raw: Any, path: str, what: str) -> list[tuple[Any, str]]:
        """The entries of a list (a single value counts as a one-item list), with their paths."""
        if raw is None:
            return []
        if isinstance(raw, list):
            return [(item, f"{path}[{i}]") for i, item in enumerate(raw)]
        if isinstance(raw, Mapping | str):
            return [(raw, path)]
        self.problem(path, f"must be {what} or a list of them, got {type_name(raw)}")
        return []


def join(path: str, key: str) -> str:
    """``path.key`` (just ``key`` at the top)."""
    return f"{path}.{key}" if path else key


def type_name(value: Any) -> str:
    """The type of ``value`` as users read it in messages."""
    return "null" if value is None else type(value).__name__


def near_miss(key: str, known: frozenset[str]) -> str | None:
    """The known key ``key`` is probably a typo of (one edit away, or a case change), or None."""
    lowered = key.lower()
    for candidate in sorted(known):
        if lowered == candidate or _one_edit(lowered, candidate):
            return candidate
    return None


def _one_edit(a: str, b: str) -> bool:
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        diffs = [i for i in range(len(a)) if a[i] != b[i]]
        if len(diffs) == 1:
            return True
        i = diffs[0] if diffs else 0
        return len(diffs) == 2 and diffs[1] == i + 1 and a[i] == b[i + 1] and a[i + 1] == b[i]
    short, long_ = (a, b) if len(a) < len(b) else (b, a)
    return any(long_[:i] + long_[i + 1 :] == short for i in range(len(long_)))
