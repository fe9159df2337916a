"""What a machine definition holds, in numbers: the answer of ``pystator validate`` and of the
HTTP API's validate route, and JSON renderings of the engine's value objects."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from pystator.fsm_core.errors import FSMError
from pystator.fsm_core.machine import StateMachine
from pystator.fsm_core.results import ActionCall, TimerSpec, TransitionResult


@dataclass(frozen=True, slots=True, kw_only=True)
class MachineSummary:
    """Name, declared version and the counts of a valid machine."""

    name: str
    version: str
    states: tuple[str, ...]
    triggers: tuple[str, ...]
    transitions: int
    timers: int
    initial_state: str

    def __str__(self) -> str:
        """``order_management: 3 states, 2 transitions, 2 triggers, 0 timers``."""
        return (
            f"{self.name}: {_plural(len(self.states), 'state')}, "
            f"{_plural(self.transitions, 'transition')}, "
            f"{_plural(len(self.triggers), 'trigger')}, {_plural(self.timers, 'timer')}"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly."""
        return {
            "name": self.name,
            "version": self.version,
            "states": list(self.states),
            "triggers": list(self.triggers),
            "transitions": self.transitions,
            "timers": self.timers,
            "initial_state": self.initial_state,
        }


def summarize(machine: StateMachine) -> MachineSummary:
    """The summary of ``machine``."""
    states = machine.states
    timers = {spec.key for state in states for spec in machine.timers_for_state(state)}
    return MachineSummary(
        name=machine.name,
        version=machine.version,
        states=states,
        triggers=machine.triggers,
        transitions=len(machine.transitions),
        timers=len(timers),
        initial_state=machine.get_initial_state(),
    )


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def result_to_dict(result: TransitionResult) -> dict[str, Any]:
    """A JSON-friendly rendering of a :class:`TransitionResult`."""
    return {
        "success": result.success,
        "source_state": result.source_state,
        "target_state": result.target_state,
        "trigger": result.trigger,
        "actions": [_action(a) for a in result.actions],
        "states_exited": list(result.states_exited),
        "states_entered": list(result.states_entered),
        "timers_to_arm": [_timer(t) for t in result.timers_to_arm],
        "timers_to_cancel": [_timer(t) for t in result.timers_to_cancel],
        "error": result.error.to_dict() if result.error is not None else None,
        "metadata": jsonable(result.metadata),
        "context": jsonable(result.context),
    }


def _action(call: ActionCall) -> dict[str, Any]:
    return {
        "name": call.name,
        "phase": call.phase.value,
        "params": jsonable(call.params),
        "state": call.state,
    }


def _timer(spec: TimerSpec) -> dict[str, Any]:
    return {
        "key": spec.key,
        "state": spec.state,
        "trigger": spec.trigger,
        "delay_ms": spec.delay_ms,
        "kind": spec.kind.value,
    }


def jsonable(value: Any) -> Any:
    """``value`` with mappings, sequences, enums and errors turned into JSON types (anything
    else becomes its ``str``)."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, FSMError):
        return value.to_dict()
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


__all__ = ["MachineSummary", "jsonable", "result_to_dict", "summarize"]
