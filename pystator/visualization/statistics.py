"""Counts that describe a machine's size and shape, for documentation or CI gates."""

from __future__ import annotations

from typing import Any

from pystator.fsm_core.definition import ActionSpec, MachineDefinition, StateKind
from pystator.fsm_core.machine import StateMachine
from pystator.visualization.common import definition_of, guard_names


def get_statistics(machine: StateMachine | MachineDefinition) -> dict[str, Any]:
    """A dict of counts and flags describing ``machine``.

    ==========================  ================================================================
    ``state_count``             every state, nested ones included (regions are not states)
    ``transition_count``        transition rules as written (one per entry, whatever its sources)
    ``terminal_state_count``    ``len(terminal_states)``
    ``initial_state``           the machine's initial state
    ``terminal_states``         names of the ``type: terminal`` states, in definition order
    ``trigger_count``           distinct triggers that can be sent (state timeouts' included)
    ``guard_count``             distinct guards the transitions use (by name, or by expression)
    ``action_count``            distinct actions on transitions, ``on_enter`` and ``on_exit``
    ``has_timeouts``            a state ``timeout:`` or a transition ``after:`` exists
    ``has_parallel_states``     a ``type: parallel`` state exists
    ``has_hierarchical_states`` a state has child states (regions of a parallel state aside)
    ==========================  ================================================================
    """
    definition = definition_of(machine)
    states = definition.states
    terminal = [s.name for s in states if s.kind is StateKind.TERMINAL]
    initial = next((s.name for s in states if s.machine_initial), None)
    triggers = {t.trigger for t in definition.transitions if t.declared_trigger}
    triggers |= {s.timeout.trigger for s in states if s.timeout is not None}
    guards = {name for t in definition.transitions for name in guard_names(t.guards)}
    actions: set[str] = set()
    for transition in definition.transitions:
        actions |= _action_names(transition.actions)
    for state in states:
        actions |= _action_names(state.on_enter) | _action_names(state.on_exit)
    state_names = {s.name for s in states}
    return {
        "state_count": len(states),
        "transition_count": len(definition.transitions),
        "terminal_state_count": len(terminal),
        "initial_state": initial,
        "terminal_states": terminal,
        "trigger_count": len(triggers),
        "guard_count": len(guards),
        "action_count": len(actions),
        "has_timeouts": any(s.timeout is not None for s in states)
        or any(t.after_ms is not None for t in definition.transitions),
        "has_parallel_states": any(s.kind is StateKind.PARALLEL for s in states),
        "has_hierarchical_states": any(s.parent in state_names for s in states),
    }


def _action_names(actions: tuple[ActionSpec, ...]) -> set[str]:
    """Names of the actions in a list, the ones inside ``branch`` entries included."""
    names: set[str] = set()
    for action in actions:
        if action.branch is not None:
            names |= _action_names(action.branch.then) | _action_names(action.branch.otherwise)
        else:
            names.add(action.name)
    return names
