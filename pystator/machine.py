"""``pystator.machine``: the machine classes under their documented module path."""

from __future__ import annotations

from pystator.fsm_core.builder import StateMachineBuilder
from pystator.fsm_core.machine import StateMachine

__all__ = ["StateMachine", "StateMachineBuilder"]
