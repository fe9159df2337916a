"""What every diagram format needs: the definition behind a machine, the state tree, the text of
an arrow (trigger, delay, guards, actions) and short delays."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pystator.fsm_core.definition import (
    ActionSpec,
    GuardSpec,
    MachineDefinition,
    StateSpec,
    TransitionSpec,
)
from pystator.fsm_core.machine import StateMachine

Direction = Literal["TB", "LR", "BT", "RL"]
DIRECTIONS: tuple[str, ...] = ("TB", "LR", "BT", "RL")


def definition_of(machine: StateMachine | MachineDefinition) -> MachineDefinition:
    """The definition of a machine (or the definition itself)."""
    return machine.definition if isinstance(machine, StateMachine) else machine


def check_direction(direction: str) -> None:
    """Raise :class:`ValueError` unless ``direction`` is one of :data:`DIRECTIONS`."""
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {', '.join(DIRECTIONS)}, not {direction!r}")


def format_delay(delay_ms: int) -> str:
    """``1500`` → ``1.5s``, ``90000`` → ``90s``, ``7200000`` → ``2h``: short, exact."""
    for unit, size in (("h", 3_600_000), ("m", 60_000)):
        if delay_ms >= size and delay_ms % size == 0:
            return f"{delay_ms // size}{unit}"
    if delay_ms % 1000 == 0:
        return f"{delay_ms // 1000}s"
    return f"{delay_ms}ms" if delay_ms < 1000 else f"{delay_ms / 1000:g}s"


def guard_names(guards: tuple[GuardSpec, ...]) -> list[str]:
    """How each guard is shown: its registered name, else its label (an expression's text …)."""
    return [guard.name or guard.label for guard in guards]


def action_names(actions: tuple[ActionSpec, ...]) -> list[str]:
    """The names of an action list (an effect shows as its kind, e.g. ``increment``)."""
    return [action.name for action in actions]


def children_by_parent(definition: MachineDefinition) -> dict[str | None, list[StateSpec]]:
    """States grouped by parent (a state, a region name, or None for the top level)."""
    children: dict[str | None, list[StateSpec]] = {}
    for state in definition.states:
        children.setdefault(state.parent, []).append(state)
    return children


@dataclass(frozen=True, slots=True)
class ArrowText:
    """The parts of a transition's label; each empty when not shown."""

    event: str
    guards: str
    actions: str

    def parts(self) -> list[str]:
        """The non-empty parts, in the order ``event [guards] / actions``."""
        return [p for p in (self.event, self.guards, self.actions) if p]


def arrow_text(transition: TransitionSpec, *, show_guards: bool, show_actions: bool) -> ArrowText:
    """The label parts of ``transition``: ``fill after 5s``, ``[is_full_fill]``, ``/ notify``.

    An engine-named trigger (a trigger-less ``after:``, a choice branch) is left out.
    """
    event: list[str] = []
    if transition.declared_trigger:
        event.append(transition.trigger)
    if transition.after_ms is not None:
        event.append(f"after {format_delay(transition.after_ms)}")
    guards = guard_names(transition.guards) if show_guards else []
    actions = action_names(transition.actions) if show_actions else []
    return ArrowText(
        event=" ".join(event),
        guards=f"[{', '.join(guards)}]" if guards else "",
        actions=f"/ {', '.join(actions)}" if actions else "",
    )
