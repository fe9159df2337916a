"""One declarative effect outside a machine: ``pystator.effects.apply_effect(ctx, {...})``.

The effect mapping goes through the same parser a machine's ``actions:`` entries do (so it is
checked the same way, with the same messages) and runs with :func:`~.effects.apply_effects`.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from datetime import datetime
from typing import Any

from pystator.fsm_core.effects import Effect, apply_effects
from pystator.fsm_core.errors import MachineValidationError
from pystator.fsm_core.parsing.actions import ActionParser
from pystator.fsm_core.parsing.conditions import ConditionParser
from pystator.fsm_core.parsing.reader import Reader


def parse_effect(spec: Mapping[str, Any]) -> Effect:
    """Compile one effect mapping (``{increment: tries}``); :class:`MachineValidationError` if
    it is not one."""
    reader = Reader()
    action = ActionParser(reader, ConditionParser(reader)).action(spec, "effect", 0)
    if reader.problems or action is None or action.effect is None:
        raise MachineValidationError(reader.problems or [], source="effect")
    return action.effect


def apply_effect(
    ctx: MutableMapping[str, Any], spec: Mapping[str, Any] | Effect, now: datetime | None = None
) -> None:
    """Apply one effect to ``ctx`` in place (a mapping is compiled first)."""
    effect = spec if isinstance(spec, Effect) else parse_effect(spec)
    updated = apply_effects([effect], ctx, now)
    ctx.clear()
    ctx.update(updated)


__all__ = ["apply_effect", "parse_effect"]
