"""Mermaid ``stateDiagram-v2`` of a machine.

:func:`to_mermaid` gives a Mermaid ``stateDiagram-v2``: nested states become composite states,
the regions of a parallel state are drawn side by side (separated by ``--``), terminal states
lead to ``[*]``, ``after:`` delays and state timeouts are written on their arrows. The dashboard
uses it with ``labels`` to show how many entities sit in each state.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping

from pystator.fsm_core.definition import (
    MachineDefinition,
    RegionSpec,
    StateKind,
    TransitionSpec,
)
from pystator.fsm_core.machine import StateMachine
from pystator.visualization.common import (
    Direction,
    arrow_text,
    check_direction,
    children_by_parent,
    definition_of,
    format_delay,
)

_INDENT = "    "
_NOT_ID = re.compile(r"[^A-Za-z0-9_]")
_ESCAPES = str.maketrans({"#": "#35;", '"': "#quot;", ";": "#59;", "\n": " ", "\r": " "})


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
    check_direction(direction)
    definition = definition_of(machine)
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


def mermaid_ids(
    definition: MachineDefinition, reserved: frozenset[str] = frozenset()
) -> dict[str, str]:
    """A distinct Mermaid id for every state and region name of ``definition``.

    Usually :func:`mermaid_id` of the name; names that map to the same id (``a.b`` and ``a_b``)
    or to a ``reserved`` word (compared lower-case) get a suffix, in definition order.
    """
    names = [s.name for s in definition.states]
    names += [r.name for s in definition.states for r in s.regions]
    ids: dict[str, str] = {}
    used: set[str] = set()
    for name in names:
        base = mermaid_id(name)
        if base.lower() in reserved:
            base = f"{base}_"
        ident, n = base, 2
        while ident in used:
            ident, n = f"{base}_{n}", n + 1
        used.add(ident)
        ids[name] = ident
    return ids


def front_matter(title: str) -> tuple[str, ...]:
    """The ``---`` block that gives a Mermaid diagram its title.

    The title is written as a double-quoted YAML string, so ``:``, ``#`` or quotes in it are
    text, not YAML syntax.
    """
    one_line = " ".join(title.splitlines())
    return ("---", f"title: {json.dumps(one_line)}", "---")


def mermaid_text(value: str) -> str:
    """Text safe inside a Mermaid label (no line breaks, quotes, ``;`` or ``#``).

    One pass, so the ``#`` and ``;`` of an entity written for one character are not escaped
    again.
    """
    return value.translate(_ESCAPES)


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
        self.children = children_by_parent(definition)
        self.ids = mermaid_ids(definition)

    def lines(self, title: str | None, direction: str) -> Iterator[str]:
        if title:
            yield from front_matter(title)
        yield "stateDiagram-v2"
        yield f"{_INDENT}direction {direction}"
        initial = next((s for s in self.definition.states if s.machine_initial), None)
        if initial is not None:
            yield f"{_INDENT}[*] --> {self.ids[initial.name]}"
        yield from self._level(None, 1)
        for transition in self.definition.transitions:
            yield from self._arrows(transition)
        if self.show_timeouts:
            for state in self.definition.states:
                if state.timeout is not None:
                    label = f"{state.timeout.trigger} ({format_delay(state.timeout.delay_ms)})"
                    yield (
                        f"{_INDENT}{self.ids[state.name]} --> "
                        f"{self.ids[state.timeout.dest]} : {mermaid_text(label)}"
                    )

    def _level(self, parent: str | None, depth: int) -> Iterator[str]:
        """Declarations of the states whose parent is ``parent`` (a state, region or None)."""
        pad = _INDENT * depth
        for state in self.children.get(parent, []):
            ident = self.ids[state.name]
            label = self.labels.get(state.name, state.name)
            if label != ident:
                yield f'{pad}state "{mermaid_text(label)}" as {ident}'
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
                    yield f"{pad}{_INDENT}[*] --> {self.ids[state.initial_child]}"
                yield from self._level(state.name, depth + 1)
                yield f"{pad}}}"
            if state.kind is StateKind.TERMINAL:
                yield f"{pad}{ident} --> [*]"

    def _region(self, region: RegionSpec, depth: int) -> Iterator[str]:
        pad = _INDENT * depth
        yield f"{pad}state {self.ids[region.name]} {{"
        if region.initial:
            yield f"{pad}{_INDENT}[*] --> {self.ids[region.initial]}"
        yield from self._level(region.name, depth + 1)
        yield f"{pad}}}"

    def _arrows(self, transition: TransitionSpec) -> Iterator[str]:
        if transition.after_ms is not None and not self.show_timeouts:
            return
        parts = arrow_text(
            transition, show_guards=self.show_guards, show_actions=self.show_actions
        ).parts()
        label = f" : {mermaid_text(' '.join(parts))}" if parts else ""
        dest = self.ids[transition.dest]
        for source in transition.sources:
            yield f"{_INDENT}{self.ids[source]} --> {dest}{label}"
