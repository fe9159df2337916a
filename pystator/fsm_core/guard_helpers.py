"""Built-in guard helpers: small factories of ``fn(context) -> bool`` for ``GuardRegistry``.

``guards.register("is_ready", equals("status", "ready"))``. A field may be a dotted path
(``"order.qty"``) into nested mappings; a missing field makes the comparison false (never an
error), so a guard over optional data simply rejects. They are the Python-side twins of the
declarative ``check:`` / ``allOf`` / ``anyOf`` / ``not`` guards in YAML.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import Any, TypeAlias

SyncGuard: TypeAlias = Callable[[Mapping[str, Any]], bool]
_MISSING = object()


def _lookup(context: Mapping[str, Any], field: str) -> Any:
    value: Any = context
    for part in field.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return _MISSING
        value = value[part]
    return value


def _named(fn: SyncGuard, name: str) -> SyncGuard:
    fn.__name__ = fn.__qualname__ = name
    return fn


def equals(field: str, value: Any) -> SyncGuard:
    """True when ``context[field] == value``."""

    def guard(context: Mapping[str, Any]) -> bool:
        found = _lookup(context, field)
        return found is not _MISSING and bool(found == value)

    return _named(guard, f"equals({field!r}, {value!r})")


def greater_than(field: str, value: Any) -> SyncGuard:
    """True when ``context[field] > value`` (false when missing or not comparable)."""

    def guard(context: Mapping[str, Any]) -> bool:
        found = _lookup(context, field)
        if found is _MISSING:
            return False
        try:
            return bool(found > value)
        except TypeError:
            return False

    return _named(guard, f"greater_than({field!r}, {value!r})")


def in_list(field: str, values: Collection[Any]) -> SyncGuard:
    """True when ``context[field]`` is one of ``values``."""
    allowed = list(values)

    def guard(context: Mapping[str, Any]) -> bool:
        found = _lookup(context, field)
        return found is not _MISSING and found in allowed

    return _named(guard, f"in_list({field!r}, {allowed!r})")


def all_of(*guards: SyncGuard) -> SyncGuard:
    """True when every guard holds (evaluated in order, stopping at the first false)."""
    _check(guards, "all_of")

    def guard(context: Mapping[str, Any]) -> bool:
        return all(g(context) for g in guards)

    return _named(guard, "all_of(" + ", ".join(_label(g) for g in guards) + ")")


def any_of(*guards: SyncGuard) -> SyncGuard:
    """True when at least one guard holds (evaluated in order, stopping at the first true)."""
    _check(guards, "any_of")

    def guard(context: Mapping[str, Any]) -> bool:
        return any(g(context) for g in guards)

    return _named(guard, "any_of(" + ", ".join(_label(g) for g in guards) + ")")


def negate(guard: SyncGuard) -> SyncGuard:
    """True when ``guard`` does not hold."""
    _check((guard,), "negate")

    def inverted(context: Mapping[str, Any]) -> bool:
        return not guard(context)

    return _named(inverted, f"negate({_label(guard)})")


def _check(guards: tuple[Any, ...], helper: str) -> None:
    if not guards:
        raise ValueError(f"{helper}() needs at least one guard")
    for g in guards:
        if not callable(g):
            raise TypeError(f"{helper}() takes guard functions, got {type(g).__name__}")


def _label(guard: Callable[..., Any]) -> str:
    return getattr(guard, "__name__", repr(guard))


__all__ = ["all_of", "any_of", "equals", "greater_than", "in_list", "negate"]
