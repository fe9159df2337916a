"""Diagrams of a machine, drawn from its definition so they never drift from the YAML.

:func:`to_mermaid` gives a Mermaid ``stateDiagram-v2``: nested states become composite states,
the regions of a parallel state are drawn side by side (separated by ``--``), terminal states
lead to ``[*]``, ``after:`` delays and state timeouts are written on their arrows. The dashboard
uses it with ``labels`` to show how many entities sit in each state.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Literal

from pystator.fsm_core.definition import (
    ActionSpec,
    GuardSpec,
    MachineDefinition,
    RegionSpec,
    StateKind,
    StateSpec,
    TransitionSpec,
)
from pystator.fsm_core.machine import StateMachine

Direction = Literal["TB", "LR", "BT", "RL"]
DIRECTIONS: tuple[str, ...] = ("TB", "LR", "BT", "RL")
_INDENT = "    "
_NOT_ID = re.compile(r"[^A-Za-z0-9_]")


def to_mermaid(
    machine: StateMachine | MachineDefinition,
    *,
    title: str | None = None,
    show_guards: bool = True,
    show_actions: bool = False,
    show_timeouts: bool = True,
    direction: Direction = "LR",
    labels: Mapping[str, str] | None = None,
) -> str:
    """The Mermaid ``stateDiagram-v2`` text of ``machine``.

    ``show_guards`` adds ``[guard, …]`` to arrows, ``show_actions`` adds ``/ action, …``,
    ``show_timeouts`` draws ``after:`` delays and state timeouts. ``labels`` maps state names to
    the text shown for them (the state name by default), e.g. ``{"triage": "triage (12)"}``.
    Raises :class:`ValueError` for an unknown ``direction``.
    """
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {', '.join(DIRECTIONS)}, not {direction!r}")
    definition = machine.definition if isinstance(machine, StateMachine) else machine
    return "\n".join(
        _MermaidWriter(
            definition,
            show_guards=show_guards,
            show_actions=show_actions,
            show_timeouts=show_timeouts,
            labels=labels or {},
        ).lines(title, direction)
    )


def mermaid_id(name: str) -> str:
    """A Mermaid-safe identifier for a state name (letters, digits and ``_`` only)."""
    ident = _NOT_ID.sub("_", name)
    return ident if ident and not ident[0].isdigit() else f"s_{ident}"


def format_delay(delay_ms: int) -> str:
    """``1500`` → ``1.5s``, ``90000`` → ``90s``, ``7200000`` → ``2h``: short, exact."""
    for unit, size in (("h", 3_600_000), ("m", 60_000)):
        if delay_ms >= size and delay_ms % size == 0:
            return f"{delay_ms // size}{unit}"
    if delay_ms % 1000 == 0:
        return f"{delay_ms // 1000}s"
    return f"{delay_ms}ms" if delay_ms < 1000 else f"{delay_ms / 1000:g}s"


def _text(value: str) -> str:
    """Text safe inside a Mermaid label (no line breaks, quotes, ``;`` or ``#``)."""
    return (
        value.replace("#", "#35;")
        .replace('"', "#quot;")
        .replace(";", "#59;")
        .replace("\n", " ")
        .replace("\r", " ")
    )


def _guard_names(guards: tuple[GuardSpec, ...]) -> list[str]:
    return [guard.name or guard.label for guard in guards]


def _action_names(actions: tuple[ActionSpec, ...]) -> list[str]:
    return [action.name for action in actions]


class _MermaidWriter:
    """Walks the state tree once; kept as a class so the options need not thread through."""

    def __init__(
        self,
        definition: MachineDefinition,
        *,
        show_guards: bool,
        show_actions: bool,
        show_timeouts: bool,
        labels: Mapping[str, str],
    ) -> None:
        self.definition = definition
        self.show_guards = show_guards
        self.show_actions = show_actions
        self.show_timeouts = show_timeouts
        self.labels = labels
        self.children: dict[str | None, list[StateSpec]] = {}
        for state in definition.states:
            self.children.setdefault(state.parent, []).append(state)

    def lines(self, title: str | None, direction: str) -> Iterator[str]:
        if title:
            yield from ("---", f"title: {_text(title)}", "---")
        yield "stateDiagram-v2"
        yield f"{_INDENT}direction {direction}"
        initial = next((s for s in self.definition.states if s.machine_initial), None)
        if initial is not None:
            yield f"{_INDENT}[*] --> {mermaid_id(initial.name)}"
        yield from self._level(None, 1)
        for transition in self.definition.transitions:
            yield from self._arrows(transition)
        if self.show_timeouts:
            for state in self.definition.states:
                if state.timeout is not None:
                    label = f"{state.timeout.trigger} ({format_delay(state.timeout.delay_ms)})"
                    yield (
                        f"{_INDENT}{mermaid_id(state.name)} --> "
                        f"{mermaid_id(state.timeout.dest)} : {_text(label)}"
                    )

    def _level(self, parent: str | None, depth: int) -> Iterator[str]:
        """Declarations of the states whose parent is ``parent`` (a state, region or None)."""
        pad = _INDENT * depth
        for state in self.children.get(parent, []):
            ident = mermaid_id(state.name)
            label = self.labels.get(state.name, state.name)
            if label != ident:
                yield f'{pad}state "{_text(label)}" as {ident}'
            elif parent is not None and not state.regions and state.name not in self.children:
                yield f"{pad}{ident}"  # declared here so it is drawn inside its parent
            if state.kind is StateKind.CHOICE:
                yield f"{pad}state {ident} <<choice>>"
            if state.regions:
                yield f"{pad}state {ident} {{"
                for number, region in enumerate(state.regions):
                    if number:
                        yield f"{pad}{_INDENT}--"
                    yield from self._region(region, depth + 1)
                yield f"{pad}}}"
            elif state.name in self.children:
                yield f"{pad}state {ident} {{"
                if state.initial_child:
                    yield f"{pad}{_INDENT}[*] --> {mermaid_id(state.initial_child)}"
                yield from self._level(state.name, depth + 1)
                yield f"{pad}}}"
            if state.kind is StateKind.TERMINAL:
                yield f"{pad}{ident} --> [*]"

    def _region(self, region: RegionSpec, depth: int) -> Iterator[str]:
        pad = _INDENT * depth
        yield f"{pad}state {mermaid_id(region.name)} {{"
        if region.initial:
            yield f"{pad}{_INDENT}[*] --> {mermaid_id(region.initial)}"
        yield from self._level(region.name, depth + 1)
        yield f"{pad}}}"

    def _arrows(self, transition: TransitionSpec) -> Iterator[str]:
        if transition.after_ms is not None and not self.show_timeouts:
            return
        parts: list[str] = []
        if transition.declared_trigger:
            parts.append(transition.trigger)
        if transition.after_ms is not None:
            parts.append(f"after {format_delay(transition.after_ms)}")
        if self.show_guards and transition.guards:
            parts.append(f"[{', '.join(_guard_names(transition.guards))}]")
        if self.show_actions and transition.actions:
            parts.append(f"/ {', '.join(_action_names(transition.actions))}")
        label = f" : {_text(' '.join(parts))}" if parts else ""
        dest = mermaid_id(transition.dest)
        for source in transition.sources:
            yield f"{_INDENT}{mermaid_id(source)} --> {dest}{label}"
