"""The state tree: parents, children, depths and document order of states and regions.

Regions are nodes of the tree too (a region's parent is its parallel state; a region's
top-level states have the region as parent), so one ancestor walk serves compound and
parallel states alike. Regions never appear in results: they are not states.
"""

from __future__ import annotations

from pystator.fsm_core.definition import MachineDefinition, StateKind, StateSpec


class StateTree:
    """Read-only structure of a definition whose names are unique and parents sound."""

    __slots__ = ("children", "depth", "initial_child", "order", "parent", "regions", "states")

    def __init__(self, definition: MachineDefinition) -> None:
        self.states: dict[str, StateSpec] = {s.name: s for s in definition.states}
        self.parent: dict[str, str | None] = {}
        self.children: dict[str, tuple[str, ...]] = {}
        self.regions: dict[str, tuple[str, ...]] = {}  # parallel state -> its region names
        self.order: dict[str, int] = {}
        kids: dict[str, list[str]] = {}
        for i, state in enumerate(definition.states):
            self.order[state.name] = i
            self.parent[state.name] = state.parent
            if state.parent is not None:
                kids.setdefault(state.parent, []).append(state.name)
            if state.regions:
                self.regions[state.name] = tuple(r.name for r in state.regions)
                for region in state.regions:
                    self.parent[region.name] = state.name
                    self.order[region.name] = i
        self.children = {name: tuple(names) for name, names in kids.items()}
        self.initial_child: dict[str, str] = {}
        for state in definition.states:
            initial = state.initial_child or self._marked_initial(state.name)
            if initial is not None:
                self.initial_child[state.name] = initial
        for region in definition.regions:
            if region.initial is not None:
                self.initial_child[region.name] = region.initial
        self.depth: dict[str, int] = {name: len(self.ancestors(name)) for name in self.parent}

    def _marked_initial(self, name: str) -> str | None:
        marked = [
            c for c in self.children.get(name, ()) if self.states[c].kind is StateKind.INITIAL
        ]
        return marked[0] if len(marked) == 1 else None

    def is_state(self, name: str) -> bool:
        """True for states, False for regions."""
        return name in self.states

    def is_parallel(self, name: str) -> bool:
        """True when ``name`` is a parallel state."""
        state = self.states.get(name)
        return state is not None and state.kind is StateKind.PARALLEL

    def ancestors(self, name: str) -> tuple[str, ...]:
        """``name`` and every node above it, innermost first."""
        chain = [name]
        parent = self.parent.get(name)
        while parent is not None:
            chain.append(parent)
            parent = self.parent.get(parent)
        return tuple(chain)

    def is_descendant(self, name: str, ancestor: str) -> bool:
        """True when ``name`` is ``ancestor`` or lies below it."""
        return ancestor in self.ancestors(name)

    def descendants(self, name: str) -> list[str]:
        """Every state below ``name`` (a state or a region), in document order."""
        found: list[str] = []
        stack = list(self.regions.get(name, ())) + list(self.children.get(name, ()))
        while stack:
            node = stack.pop()
            if node in self.states:
                found.append(node)
            stack.extend(self.regions.get(node, ()))
            stack.extend(self.children.get(node, ()))
        return sorted(found, key=self.order.__getitem__)

    def is_leaf(self, name: str) -> bool:
        """True for a state with no children and no regions."""
        return name in self.states and name not in self.children and name not in self.regions

    def default_entry(self, name: str) -> list[str]:
        """The nodes entered below ``name`` when it is entered by default (initial chains)."""
        entered: list[str] = []
        if name in self.regions:
            for region in self.regions[name]:
                entered.append(region)
                entered.extend(self.initial_path(region))
        elif name in self.initial_child:
            entered.extend(self.initial_path(name))
        return entered

    def initial_path(self, name: str) -> list[str]:
        """The initial child of ``name`` and, below it, its own default entry."""
        child = self.initial_child[name]
        return [child, *self.default_entry(child)]

    def lowest_common_ancestor(self, a: str, b: str) -> str | None:
        """The innermost node that is a proper ancestor of both ``a`` and ``b``."""
        above_b = set(self.ancestors(b)[1:])
        for node in self.ancestors(a)[1:]:
            if node in above_b:
                return node
        return None
