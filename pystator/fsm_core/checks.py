"""Declarative checks: ``{field: retry_count, op: lt, value: 3}`` as a guard, a ``when`` or a rule.

A check is parsed once (:func:`parse_check`) and compiled into a closure over the field name and
the constant (:attr:`CheckSpec.predicate`); nothing is evaluated from text. A missing field reads
as ``None``. The ordering operators are ``False`` for a missing field and for values that cannot
be compared (``None > 3``, ``"a" < 1``), like the comparisons of ``expr:`` guards.

=========  ====================================  ==========
operator   true when                             needs
=========  ====================================  ==========
eq / neq   the field equals / differs            ``value``
gt gte     the field is > / >= the value         ``value``
lt lte     the field is < / <= the value         ``value``
in         the field is one of the values        ``values``
not_in     the field is none of the values       ``values``
is_set     the field is present and not null     —
is_null    the field is absent or null           —
=========  ====================================  ==========
"""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeAlias

from pystator.fsm_core.errors import ConfigurationError
from pystator.fsm_core.limits import MAX_CHECK_VALUES, MAX_EXPRESSION_LENGTH, MAX_FIELD_LENGTH

Predicate: TypeAlias = Callable[[Mapping[str, Any]], bool]

VALUE_OPERATORS = ("eq", "neq", "gt", "gte", "lt", "lte")
LIST_OPERATORS = ("in", "not_in")
PRESENCE_OPERATORS = ("is_set", "is_null")
OPERATORS = VALUE_OPERATORS + LIST_OPERATORS + PRESENCE_OPERATORS
CHECK_KEYS = frozenset({"field", "op", "value", "values"})

_ORDERING: dict[str, Callable[[Any, Any], Any]] = {
    "gt": operator.gt,
    "gte": operator.ge,
    "lt": operator.lt,
    "lte": operator.le,
}


class CheckError(ConfigurationError):
    """A check mapping is malformed; ``key`` names the offending key (None: the mapping)."""

    def __init__(self, message: str, *, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


@dataclass(frozen=True, slots=True)
class CheckSpec:
    """One parsed check with its compiled predicate."""

    field: str
    op: str
    value: Any = None
    values: tuple[Any, ...] = ()
    predicate: Predicate = dataclasses.field(default=lambda ctx: False, compare=False, repr=False)

    @property
    def label(self) -> str:
        """``retry_count lt 3`` (used in rejections and lint messages)."""
        if self.op in PRESENCE_OPERATORS:
            return f"{self.field} {self.op}"
        if self.op in LIST_OPERATORS:
            return f"{self.field} {self.op} {list(self.values)!r}"
        return f"{self.field} {self.op} {self.value!r}"

    def to_dict(self) -> dict[str, Any]:
        """The mapping this check was parsed from (normalised)."""
        out: dict[str, Any] = {"field": self.field, "op": self.op}
        if self.op in VALUE_OPERATORS:
            out["value"] = self.value
        elif self.op in LIST_OPERATORS:
            out["values"] = list(self.values)
        return out


def parse_check(raw: Any) -> CheckSpec:
    """Check and compile one ``{field, op, value | values}`` mapping; :class:`CheckError` if bad."""
    if not isinstance(raw, Mapping):
        raise CheckError(f"a check must be a mapping {{field, op, value}}, got {_type(raw)}")
    unknown = sorted(str(k) for k in raw if k not in CHECK_KEYS)
    if unknown:
        raise CheckError(f"unknown key (known: {', '.join(sorted(CHECK_KEYS))})", key=unknown[0])
    name = raw.get("field")
    if not isinstance(name, str) or not name or len(name) > MAX_FIELD_LENGTH:
        raise CheckError(
            f"a check needs 'field': a context key of 1 to {MAX_FIELD_LENGTH} characters",
            key="field",
        )
    op = raw.get("op")
    if op not in OPERATORS:
        raise CheckError(
            f"unknown operator {op!r} (expected one of: {', '.join(OPERATORS)})", key="op"
        )
    if op in VALUE_OPERATORS:
        return _value_check(name, op, raw)
    if op in LIST_OPERATORS:
        return _list_check(name, op, raw)
    for key in ("value", "values"):
        if key in raw:
            raise CheckError(f"operator {op!r} takes no {key!r}", key=key)
    return CheckSpec(name, op, predicate=_presence(name, op == "is_set"))


def _value_check(name: str, op: str, raw: Mapping[str, Any]) -> CheckSpec:
    if "values" in raw:
        raise CheckError(f"operator {op!r} compares with 'value', not 'values'", key="values")
    if "value" not in raw:
        raise CheckError(f"operator {op!r} needs 'value'", key="value")
    value = _scalar(raw["value"], "value")
    return CheckSpec(name, op, value=value, predicate=_compare(name, op, value))


def _list_check(name: str, op: str, raw: Mapping[str, Any]) -> CheckSpec:
    if "value" in raw:
        raise CheckError(f"operator {op!r} takes a list under 'values', not 'value'", key="value")
    values = raw.get("values")
    if not isinstance(values, list | tuple):
        raise CheckError(f"operator {op!r} needs 'values': a list", key="values")
    if len(values) > MAX_CHECK_VALUES:
        raise CheckError(f"'values' may hold at most {MAX_CHECK_VALUES} items", key="values")
    items = tuple(_scalar(v, "values") for v in values)
    return CheckSpec(name, op, values=items, predicate=_membership(name, items, op == "in"))


def _scalar(value: Any, key: str) -> Any:
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        if len(value) > MAX_EXPRESSION_LENGTH:
            raise CheckError(f"a {key} string is longer than {MAX_EXPRESSION_LENGTH}", key=key)
        return value
    raise CheckError(
        f"a {key} must be a string, number, boolean or null, got {_type(value)}", key=key
    )


def _compare(name: str, op: str, value: Any) -> Predicate:
    if op == "eq":
        return lambda ctx: ctx.get(name) == value
    if op == "neq":
        return lambda ctx: ctx.get(name) != value
    compare = _ORDERING[op]

    def ordered(ctx: Mapping[str, Any]) -> bool:
        current = ctx.get(name)
        if current is None:
            return False
        try:
            return True if compare(current, value) else False  # noqa: SIM210 - no bool() call
        except TypeError:
            return False

    return ordered


def _membership(name: str, values: tuple[Any, ...], inside: bool) -> Predicate:
    if inside:
        return lambda ctx: ctx.get(name) in values
    return lambda ctx: ctx.get(name) not in values


def _presence(name: str, present: bool) -> Predicate:
    if present:
        return lambda ctx: ctx.get(name) is not None
    return lambda ctx: ctx.get(name) is None


def evaluate_check(check: Mapping[str, Any] | CheckSpec, context: Mapping[str, Any]) -> bool:
    """Evaluate one check against ``context`` (a mapping is parsed first)."""
    spec = check if isinstance(check, CheckSpec) else parse_check(check)
    return spec.predicate(context)


def _type(value: Any) -> str:
    return "null" if value is None else type(value).__name__
