"""``pystator.effects``: declarative effects (``set``, ``timestamp``, ``increment`` …) outside a
machine, under their documented import path."""

from __future__ import annotations

from pystator.fsm_core.effects import EFFECT_KEYS, Effect, EffectKind, apply_effects
from pystator.fsm_core.standalone_effects import apply_effect, parse_effect

__all__ = ["EFFECT_KEYS", "Effect", "EffectKind", "apply_effect", "apply_effects", "parse_effect"]
