"""``pystator.core``: the machine, the session and the core value types in one namespace."""

from __future__ import annotations

from pystator.fsm_core.definition import (
    ActionSpec,
    GuardSpec,
    Region,
    State,
    StateType,
    Timeout,
    Transition,
)
from pystator.fsm_core.machine import StateMachine
from pystator.fsm_core.records import Event
from pystator.fsm_core.results import TransitionResult
from pystator.fsm_core.session import EntitySession

__all__ = [
    "ActionSpec",
    "EntitySession",
    "Event",
    "GuardSpec",
    "Region",
    "State",
    "StateMachine",
    "StateType",
    "Timeout",
    "Transition",
    "TransitionResult",
]
