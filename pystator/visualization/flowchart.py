"""Mermaid ``flowchart`` of a machine: the same graph as :func:`to_mermaid`, another layout.

States are nodes shaped by kind (initial: stadium ``([…])``, terminal: double hexagon
``{{…}}``, choice: rhombus ``{…}``, others: rectangle ``[…]``); a compound state is a
``subgraph`` holding its children, a parallel state a ``subgraph`` holding one ``subgraph`` per
region. Arrows into or out of a compound or parallel state attach to its subgraph; delayed
transitions and state timeouts are dotted.
"""

from __future__ import annotations

from collections.abc import Iterator

from pystator.fsm_core.definition import MachineDefinition, StateKind, StateSpec
from pystator.fsm_core.machine import StateMachine
from pystator.visualization.common import (
    Direction,
    arrow_text,
    check_direction,
    children_by_parent,
    definition_of,
    format_delay,
)
from pystator.visualization.mermaid import front_matter, mermaid_ids, mermaid_text

_INDENT = "    "
#: Words the flowchart grammar reads as keywords when used as a node id.
_RESERVED = frozenset({"end", "graph", "flowchart", "subgraph", "direction", "style", "class"})


def to_mermaid_flowchart(
    machine: StateMachine | MachineDefinition,
    *,
    title: str | None = None,
    show_guards: bool = True,
    show_actions: bool = False,
    show_timeouts: bool = True,
    direction: Direction = "TB",
) -> str:
    """The Mermaid ``flowchart`` text of ``machine``.

    The options mean what they mean for :func:`~pystator.visualization.to_mermaid`; the
    default ``direction`` is top to bottom. Raises :class:`ValueError` for an unknown
    ``direction``.
    """
    check_direction(direction)
    definition = definition_of(machine)
    lines: list[str] = []
    if title:
        lines += front_matter(title)
    lines.append(f"flowchart {direction}")
    ids = mermaid_ids(definition, _RESERVED)
    lines += _nodes(ids, children_by_parent(definition), None, 1)
    for transition in definition.transitions:
        if transition.after_ms is not None and not show_timeouts:
            continue
        parts = arrow_text(transition, show_guards=show_guards, show_actions=show_actions).parts()
        arrow = "-.->" if transition.after_ms is not None else "-->"
        link = f'{arrow}|"{mermaid_text(" ".join(parts))}"|' if parts else arrow
        dest = ids[transition.dest]
        lines += [f"{_INDENT}{ids[s]} {link} {dest}" for s in transition.sources]
    if show_timeouts:
        for state in definition.states:
            if state.timeout is not None:
                text = f"{state.timeout.trigger} ({format_delay(state.timeout.delay_ms)})"
                lines.append(
                    f"{_INDENT}{ids[state.name]} -.->|"
                    f'"{mermaid_text(text)}"| {ids[state.timeout.dest]}'
                )
    return "\n".join(lines)


def _nodes(
    ids: dict[str, str],
    children: dict[str | None, list[StateSpec]],
    parent: str | None,
    depth: int,
) -> Iterator[str]:
    pad = _INDENT * depth
    for state in children.get(parent, []):
        ident = ids[state.name]
        label = f'"{mermaid_text(state.name)}"'
        if state.regions:
            yield f"{pad}subgraph {ident} [{label}]"
            for region in state.regions:
                yield f'{pad}{_INDENT}subgraph {ids[region.name]} ["{region.name}"]'
                yield from _nodes(ids, children, region.name, depth + 2)
                yield f"{pad}{_INDENT}end"
            yield f"{pad}end"
        elif state.name in children:
            yield f"{pad}subgraph {ident} [{label}]"
            yield from _nodes(ids, children, state.name, depth + 1)
            yield f"{pad}end"
        else:
            yield f"{pad}{ident}{_shape(state, label)}"


def _shape(state: StateSpec, label: str) -> str:
    if state.kind is StateKind.TERMINAL:
        return f"{{{{{label}}}}}"
    if state.kind is StateKind.CHOICE:
        return f"{{{label}}}"
    if state.kind is StateKind.INITIAL or state.machine_initial:
        return f"([{label}])"
    return f"[{label}]"
