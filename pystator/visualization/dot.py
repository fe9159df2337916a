"""Graphviz DOT of a machine, for ``dot -Tsvg`` / ``-Tpng`` / ``-Tpdf``.

Leaf states are rounded boxes (terminal ones with a double border, choice states diamonds); a
compound state is a cluster holding its children, a parallel state a bold cluster holding one
dashed cluster per region. A point marks where the machine (and each compound state or region)
starts. Graphviz draws edges between nodes only, so an arrow into a compound or parallel state
points at the leaf it enters by default and is clipped at the state's cluster (``lhead``); an
arrow out of one leaves from a leaf inside it, clipped the same way (``ltail``). Delayed
transitions and state timeouts are dashed.
"""

from __future__ import annotations

from collections.abc import Iterator

from pystator.fsm_core.definition import MachineDefinition, StateKind, StateSpec
from pystator.fsm_core.machine import StateMachine
from pystator.fsm_core.tree import StateTree
from pystator.visualization.common import (
    Direction,
    arrow_text,
    check_direction,
    children_by_parent,
    definition_of,
    format_delay,
)

_INDENT = "    "
#: Id of the point the machine starts from; ``[``, ``*`` and ``]`` never occur in state names.
START_NODE = "[*]"


def to_dot(
    machine: StateMachine | MachineDefinition,
    *,
    title: str | None = None,
    show_guards: bool = True,
    show_actions: bool = False,
    show_timeouts: bool = True,
    direction: Direction = "LR",
) -> str:
    """The Graphviz DOT source of ``machine`` (a ``digraph`` named after the machine).

    ``show_guards`` adds ``[guard, …]`` to edge labels, ``show_actions`` adds ``/ action, …``,
    ``show_timeouts`` draws ``after:`` delays and state timeouts; ``direction`` is the
    ``rankdir``. Raises :class:`ValueError` for an unknown ``direction``.
    """
    check_direction(direction)
    return "\n".join(
        _DotWriter(
            definition_of(machine),
            show_guards=show_guards,
            show_actions=show_actions,
            show_timeouts=show_timeouts,
        ).lines(title, direction)
    )


def dot_quote(value: str) -> str:
    """``value`` as a double-quoted DOT string (``\\n`` stays a DOT line break)."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\r", "").replace("\n", "\\n")
    return f'"{escaped}"'


def cluster_id(name: str) -> str:
    """The subgraph id of a compound state, parallel state or region (must start ``cluster``)."""
    return dot_quote(f"cluster:{name}")


def _attrs(**attrs: str | None) -> str:
    shown = [f"{key}={value}" for key, value in attrs.items() if value is not None]
    return f" [{', '.join(shown)}]" if shown else ""


class _DotWriter:
    """Walks the state tree once; the options are kept on the instance."""

    def __init__(
        self,
        definition: MachineDefinition,
        *,
        show_guards: bool,
        show_actions: bool,
        show_timeouts: bool,
    ) -> None:
        self.definition = definition
        self.show_guards = show_guards
        self.show_actions = show_actions
        self.show_timeouts = show_timeouts
        self.children = children_by_parent(definition)
        self.tree = StateTree(definition)

    def lines(self, title: str | None, direction: str) -> Iterator[str]:
        yield f"digraph {dot_quote(self.definition.meta.name)} {{"
        graph = {"rankdir": direction, "compound": "true", "fontname": '"Helvetica"'}
        if title:
            graph |= {"label": dot_quote(title), "labelloc": "t", "fontsize": "16"}
        yield f"{_INDENT}graph{_attrs(**graph)};"
        yield f'{_INDENT}node [shape=box, style=rounded, fontname="Helvetica"];'
        yield f'{_INDENT}edge [fontname="Helvetica", fontsize=10];'
        initial = next((s for s in self.definition.states if s.machine_initial), None)
        if initial is not None:
            yield from self._start(START_NODE, initial.name, 1)
        yield from self._level(None, 1)
        for transition in self.definition.transitions:
            if transition.after_ms is not None and not self.show_timeouts:
                continue
            text = arrow_text(
                transition, show_guards=self.show_guards, show_actions=self.show_actions
            )
            label = "\n".join(text.parts())
            dashed = "dashed" if transition.after_ms is not None else None
            for source in transition.sources:
                yield self._edge(source, transition.dest, label, style=dashed)
        if self.show_timeouts:
            for state in self.definition.states:
                if state.timeout is not None:
                    label = f"{state.timeout.trigger}\n({format_delay(state.timeout.delay_ms)})"
                    yield self._edge(state.name, state.timeout.dest, label, style="dashed")
        yield "}"

    # nodes and clusters ---------------------------------------------------------------------

    def _level(self, parent: str | None, depth: int) -> Iterator[str]:
        pad = _INDENT * depth
        for state in self.children.get(parent, []):
            if state.regions:
                yield f"{pad}subgraph {cluster_id(state.name)} {{"
                yield f'{pad}{_INDENT}label={dot_quote(state.name)}; style="rounded,bold";'
                for region in state.regions:
                    yield f"{pad}{_INDENT}subgraph {cluster_id(region.name)} {{"
                    yield f"{pad}{_INDENT * 2}label={dot_quote(region.name)}; style=dashed;"
                    if region.initial:
                        yield from self._start(f"[*]{region.name}", region.initial, depth + 2)
                    yield from self._level(region.name, depth + 2)
                    yield f"{pad}{_INDENT}}}"
                yield f"{pad}}}"
            elif state.name in self.children:
                yield f"{pad}subgraph {cluster_id(state.name)} {{"
                yield f"{pad}{_INDENT}label={dot_quote(state.name)}; style=rounded;"
                initial = self.tree.initial_child.get(state.name)
                if initial:
                    yield from self._start(f"[*]{state.name}", initial, depth + 1)
                yield from self._level(state.name, depth + 1)
                yield f"{pad}}}"
            else:
                yield f"{pad}{dot_quote(state.name)}{self._node_attrs(state)};"

    def _start(self, point: str, initial: str, depth: int) -> Iterator[str]:
        pad = _INDENT * depth
        yield f'{pad}{dot_quote(point)} [shape=point, width=0.15, label=""];'
        yield self._edge(point, initial, "", pad=pad)

    @staticmethod
    def _node_attrs(state: StateSpec) -> str:
        tooltip = dot_quote(state.description) if state.description else None
        if state.kind is StateKind.TERMINAL:
            return _attrs(peripheries="2", tooltip=tooltip)
        if state.kind is StateKind.CHOICE:
            return _attrs(shape="diamond", style="solid", tooltip=tooltip)
        return _attrs(tooltip=tooltip)

    # edges ----------------------------------------------------------------------------------

    def _edge(
        self,
        source: str,
        dest: str,
        label: str,
        *,
        style: str | None = None,
        pad: str = _INDENT,
    ) -> str:
        tail, ltail = self._anchor(source)
        head, lhead = self._anchor(dest)
        attrs = _attrs(
            label=dot_quote(label) if label else None,
            ltail=ltail,
            lhead=lhead,
            style=style,
        )
        return f"{pad}{dot_quote(tail)} -> {dot_quote(head)}{attrs};"

    def _anchor(self, name: str) -> tuple[str, str | None]:
        """The node an edge to or from ``name`` attaches to, and the cluster that clips it."""
        if self.tree.is_leaf(name) or not self.tree.is_state(name):
            return name, None  # a leaf, or the start point
        entered = [n for n in self.tree.default_entry(name) if self.tree.is_leaf(n)]
        leaf = (
            entered[0]
            if entered
            else next((n for n in self.tree.descendants(name) if self.tree.is_leaf(n)), name)
        )
        return leaf, cluster_id(name)
