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
from collections.abc import Callable, Iterable, Mapping
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
    ``value`` for ``append`` and ``expressions`` for ``compute``. ``run(ctx, now)`` is the
    effect's function, chosen once at construction."""

    kind: EffectKind
    field: str | None = None
    values: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    value: Any = None
    expressions: tuple[tuple[str, CompiledValue], ...] = ()
    run: Callable[[dict[str, Any], datetime], None] = dataclasses.field(
        init=False, compare=False, repr=False
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "run", _RUNNERS[self.kind](self))

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
        self.run(ctx, now)


Runner = Callable[[dict[str, Any], datetime], None]


def _set(effect: Effect) -> Runner:
    constants = tuple((k, v) for k, v in effect.values.items() if _immutable(v))
    copied = tuple((k, v) for k, v in effect.values.items() if not _immutable(v))

    def run(ctx: dict[str, Any], now: datetime) -> None:
        for key, value in constants:
            ctx[key] = value
        for key, value in copied:
            ctx[key] = copy.deepcopy(value)  # never share a mutable constant between entities

    return run


def _timestamp(effect: Effect) -> Runner:
    key = _field(effect)

    def run(ctx: dict[str, Any], now: datetime) -> None:
        moment = now.astimezone(UTC) if now.tzinfo is not None else now.replace(tzinfo=UTC)
        ctx[key] = moment.isoformat()

    return run


def _stepper(delta: int) -> Callable[[Effect], Runner]:
    def factory(effect: Effect) -> Runner:
        key = _field(effect)

        def run(ctx: dict[str, Any], now: datetime) -> None:
            current = ctx.get(key)
            if current is None:
                current = 0
            elif current.__class__ is bool or not isinstance(current, int | float):
                raise EffectError(
                    f"effect '{effect.label}': {key!r} holds {type(current).__name__} "
                    f"{_short(current)}, not a number",
                    effect=effect.kind.value,
                    field=key,
                )
            ctx[key] = current + delta

        return run

    return factory


def _append(effect: Effect) -> Runner:
    key = _field(effect)
    value = effect.value
    mutable = not _immutable(value)

    def run(ctx: dict[str, Any], now: datetime) -> None:
        current = ctx.get(key)
        if current is None:
            current = []
        elif not isinstance(current, list):
            raise EffectError(
                f"effect '{effect.label}': {key!r} holds {type(current).__name__}, not a list",
                effect=effect.kind.value,
                field=key,
            )
        ctx[key] = [*current, copy.deepcopy(value) if mutable else value]  # a new list

    return run


def _clear(effect: Effect) -> Runner:
    key = _field(effect)

    def run(ctx: dict[str, Any], now: datetime) -> None:
        ctx.pop(key, None)

    return run


def _compute(effect: Effect) -> Runner:
    expressions = effect.expressions

    def run(ctx: dict[str, Any], now: datetime) -> None:
        for key, expression in expressions:
            ctx[key] = expression.evaluate(ctx)

    return run


def _field(effect: Effect) -> str:
    if effect.field is None:
        raise ValueError(f"a {effect.kind.value} effect needs a field")
    return effect.field


_RUNNERS: dict[EffectKind, Callable[[Effect], Runner]] = {
    EffectKind.SET: _set,
    EffectKind.TIMESTAMP: _timestamp,
    EffectKind.INCREMENT: _stepper(1),
    EffectKind.DECREMENT: _stepper(-1),
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
        effect.run(ctx, moment)
    return ctx
