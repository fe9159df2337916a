"""Declarative effects: context changes written in the definition, applied by the engine.

==========================================  ===============================================
effect                                      what it does to the context
==========================================  ===============================================
``{set: {phase: running, tries: 0}}``       assigns each key (values are copied)
``{timestamp: started_at}``                 the step's clock as an ISO 8601 UTC string
``{increment: tries}`` / ``{decrement: …}``  adds / subtracts 1 (an absent or null key is 0)
``{append: {field: ids, value: 7}}``        a new list: the old one (or ``[]``) plus the value
``{clear: token}``                          removes the key (absent: nothing happens)
``{compute: {total: "qty * price"}}``       each key from an ``expr:``-language expression
==========================================  ===============================================

Effects are parsed and compiled when the machine loads (``compute`` uses the same compiled,
whitelisted expression language as ``expr:`` guards: no ``eval``). They never mutate the caller's
mapping: :func:`apply_effects` works on a copy. Increment/decrement refuse a boolean or non-number
and append refuses a non-list, with :class:`EffectError`.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Any

from pystator.fsm_core.errors import EffectError
from pystator.fsm_core.expressions import CompiledValue


class EffectKind(str, Enum):
    """The seven effect types."""

    SET = "set"
    TIMESTAMP = "timestamp"
    INCREMENT = "increment"
    DECREMENT = "decrement"
    APPEND = "append"
    CLEAR = "clear"
    COMPUTE = "compute"


EFFECT_KEYS = frozenset(kind.value for kind in EffectKind)


@dataclass(frozen=True, slots=True)
class Effect:
    """One compiled effect. ``field`` is set for the single-field kinds, ``values`` for ``set``,
    ``value`` for ``append`` and ``expressions`` for ``compute``."""

    kind: EffectKind
    field: str | None = None
    values: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    value: Any = None
    expressions: tuple[tuple[str, CompiledValue], ...] = ()

    @property
    def label(self) -> str:
        """``increment retry_count`` (for messages)."""
        if self.kind is EffectKind.SET:
            return f"set {', '.join(self.values)}"
        if self.kind is EffectKind.COMPUTE:
            return f"compute {', '.join(k for k, _ in self.expressions)}"
        return f"{self.kind.value} {self.field}"

    def apply(self, ctx: dict[str, Any], now: datetime) -> None:
        """Change ``ctx`` (a working copy owned by the engine) in place."""
        _APPLY[self.kind](self, ctx, now)


def _set(effect: Effect, ctx: dict[str, Any], now: datetime) -> None:
    for key, value in effect.values.items():
        ctx[key] = value if _immutable(value) else copy.deepcopy(value)


def _timestamp(effect: Effect, ctx: dict[str, Any], now: datetime) -> None:
    assert effect.field is not None
    moment = now.astimezone(UTC) if now.tzinfo is not None else now.replace(tzinfo=UTC)
    ctx[effect.field] = moment.isoformat()


def _step(effect: Effect, ctx: dict[str, Any], delta: int) -> None:
    key = effect.field
    assert key is not None
    current = ctx.get(key)
    if current is None:
        current = 0
    elif isinstance(current, bool) or not isinstance(current, int | float):
        raise EffectError(
            f"effect '{effect.label}': {key!r} holds {type(current).__name__} "
            f"{_short(current)}, not a number",
            effect=effect.kind.value,
            field=key,
        )
    ctx[key] = current + delta


def _increment(effect: Effect, ctx: dict[str, Any], now: datetime) -> None:
    _step(effect, ctx, 1)


def _decrement(effect: Effect, ctx: dict[str, Any], now: datetime) -> None:
    _step(effect, ctx, -1)


def _append(effect: Effect, ctx: dict[str, Any], now: datetime) -> None:
    key = effect.field
    assert key is not None
    current = ctx.get(key)
    if current is None:
        current = []
    elif not isinstance(current, list):
        raise EffectError(
            f"effect '{effect.label}': {key!r} holds {type(current).__name__}, not a list",
            effect=effect.kind.value,
            field=key,
        )
    value = effect.value if _immutable(effect.value) else copy.deepcopy(effect.value)
    ctx[key] = [*current, value]  # a new list: the stored one may be shared


def _clear(effect: Effect, ctx: dict[str, Any], now: datetime) -> None:
    assert effect.field is not None
    ctx.pop(effect.field, None)


def _compute(effect: Effect, ctx: dict[str, Any], now: datetime) -> None:
    for key, expression in effect.expressions:
        ctx[key] = expression.evaluate(ctx)


_APPLY = {
    EffectKind.SET: _set,
    EffectKind.TIMESTAMP: _timestamp,
    EffectKind.INCREMENT: _increment,
    EffectKind.DECREMENT: _decrement,
    EffectKind.APPEND: _append,
    EffectKind.CLEAR: _clear,
    EffectKind.COMPUTE: _compute,
}


def _immutable(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def apply_effects(
    effects: Iterable[Effect], context: Mapping[str, Any], now: datetime | None = None
) -> dict[str, Any]:
    """A new context: ``context`` with ``effects`` applied in order (``now`` for timestamps)."""
    ctx = dict(context)
    moment = now if now is not None else datetime.now(UTC)
    for effect in effects:
        effect.apply(ctx, moment)
    return ctx
