"""Guard conditions: named guards, compiled predicates and their ``allOf``/``anyOf``/``not``.

A tree without named guards folds into one predicate at load time (:func:`fold`), so ``process``
makes one call per guard. A tree that names guards stays a tree: the engine resolves the names
against the machine's registry when it evaluates it (sync or async).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, TypeAlias

Predicate: TypeAlias = Callable[[Mapping[str, Any]], bool]

_NO_PARAMS: Mapping[str, Any] = MappingProxyType({})


def _no_params() -> Mapping[str, Any]:
    return _NO_PARAMS


@dataclass(frozen=True, slots=True)
class Named:
    """A guard registered in Python under ``name`` (called with ``params`` as keywords, if any)."""

    name: str
    params: Mapping[str, Any] = field(default_factory=_no_params)

    @property
    def label(self) -> str:
        """The guard's name."""
        return self.name


@dataclass(frozen=True, slots=True)
class Test:
    """A compiled predicate (an ``expr:`` or a ``check:``) with the text that names it."""

    predicate: Predicate = field(compare=False)
    label: str


@dataclass(frozen=True, slots=True)
class AllOf:
    """True when every part is true (evaluated in order, stops at the first false)."""

    parts: tuple[Condition, ...]

    @property
    def label(self) -> str:
        """``allOf(…)``."""
        return f"allOf({', '.join(p.label for p in self.parts)})"


@dataclass(frozen=True, slots=True)
class AnyOf:
    """True when some part is true (evaluated in order, stops at the first true)."""

    parts: tuple[Condition, ...]

    @property
    def label(self) -> str:
        """``anyOf(…)``."""
        return f"anyOf({', '.join(p.label for p in self.parts)})"


@dataclass(frozen=True, slots=True)
class Not:
    """True when its part is false."""

    part: Condition

    @property
    def label(self) -> str:
        """``not(…)``."""
        return f"not({self.part.label})"


Condition: TypeAlias = Named | Test | AllOf | AnyOf | Not


def names_in(condition: Condition) -> Iterator[str]:
    """Every guard name the condition refers to, in order."""
    if isinstance(condition, Named):
        yield condition.name
    elif isinstance(condition, AllOf | AnyOf):
        for part in condition.parts:
            yield from names_in(part)
    elif isinstance(condition, Not):
        yield from names_in(condition.part)


def fold(condition: Condition) -> Predicate | None:
    """One predicate for a tree without named guards; None when it names a guard."""
    if isinstance(condition, Named):
        return None
    if isinstance(condition, Test):
        return condition.predicate
    if isinstance(condition, Not):
        inner = fold(condition.part)
        return None if inner is None else _negate(inner)
    parts = [fold(p) for p in condition.parts]
    if any(p is None for p in parts):
        return None
    predicates = tuple(p for p in parts if p is not None)
    return _all(predicates) if isinstance(condition, AllOf) else _any(predicates)


def _negate(inner: Predicate) -> Predicate:
    return lambda ctx: not inner(ctx)


def _all(parts: tuple[Predicate, ...]) -> Predicate:
    def all_of(ctx: Mapping[str, Any]) -> bool:
        for part in parts:  # noqa: SIM110 - a plain loop: no generator per evaluation
            if not part(ctx):
                return False
        return True

    return all_of


def _any(parts: tuple[Predicate, ...]) -> Predicate:
    def any_of(ctx: Mapping[str, Any]) -> bool:
        for part in parts:  # noqa: SIM110 - a plain loop: no generator per evaluation
            if part(ctx):
                return True
        return False

    return any_of
