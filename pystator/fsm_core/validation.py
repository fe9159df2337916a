"""Semantic checks of a parsed definition: every cross-reference, named by its path.

The checks here need the whole document (does this ``dest`` exist? is there exactly one initial
state?), so they run after :func:`~pystator.fsm_core.definition.parse_definition` and add to the
same list of problems.
"""

from __future__ import annotations

from pystator.fsm_core.definition import MachineDefinition, StateKind, StateSpec, TransitionSpec
from pystator.fsm_core.errors import ConfigProblem
from pystator.fsm_core.tree import StateTree


def validate_definition(definition: MachineDefinition) -> list[ConfigProblem]:
    """Every semantic problem of ``definition`` (an empty list when it is sound)."""
    checker = _Checker(definition)
    checker.run()
    return checker.problems


class _Checker:
    def __init__(self, definition: MachineDefinition) -> None:
        self.definition = definition
        self.problems: list[ConfigProblem] = []
        self.states: dict[str, StateSpec] = {}
        self.region_names = {r.name for r in definition.regions}
        self.region_owner = {r.name: s.name for s in definition.states for r in s.regions}

    def problem(self, path: str, message: str) -> None:
        self.problems.append(ConfigProblem(path, message))

    def run(self) -> None:
        self.unique_names()
        self.parents()
        self.references()
        if self.problems:  # the tree below needs unique names and sound parents
            self.transitions()
            return
        tree = StateTree(self.definition)
        self.initial_states()
        self.compound_states(tree)
        self.regions(tree)
        self.choices()
        self.transitions(tree)
        self.timeouts()
        self.context_rules()

    def references(self) -> None:
        """Groups, the error policy's fallback state and the trigger spelling rule."""
        groups = {g.name for g in self.definition.groups}
        for state in self.definition.states:
            if state.group is not None and state.group not in groups:
                self.problem(
                    f"{state.path}.group",
                    f"unknown group {state.group!r} (define it under groups:)",
                )
        fallback = self.definition.error_policy.default_fallback
        if fallback is not None:
            target = self.states.get(fallback)
            if target is None:
                self.problem("error_policy.default_fallback", f"unknown state {fallback!r}")
            elif target.kind is StateKind.CHOICE:
                self.problem(
                    "error_policy.default_fallback",
                    f"{fallback!r} is a choice state, not a state to rest in",
                )
        self.classification()
        normalizer = self.definition.meta.event_normalizer
        for t in self.definition.transitions:
            if (
                normalizer
                and t.declared_trigger
                and t.trigger != _normalized(t.trigger, normalizer)
            ):
                self.problem(
                    f"{t.path}.trigger",
                    f"trigger {t.trigger!r} is not {normalizer}-case but meta.event_normalizer "
                    f"is {normalizer!r}: it could never match",
                )

    def classification(self) -> None:
        """``meta.classification.default_state`` and ``when`` rules name states to rest in."""
        settings = self.definition.meta.classification
        default = None if settings is None else settings.default_state
        if default is not None:
            target = self.states.get(default)
            if target is None:
                self.problem("meta.classification.default_state", f"unknown state {default!r}")
            elif target.kind is StateKind.CHOICE:
                self.problem(
                    "meta.classification.default_state",
                    f"{default!r} is a choice state, not a state to rest in",
                )
        for state in self.definition.states:
            if state.when and state.kind is StateKind.CHOICE:
                self.problem(
                    f"{state.path}.when",
                    f"choice state {state.name!r} is never rested in: it cannot classify records",
                )

    def unique_names(self) -> None:
        seen: dict[str, str] = {}
        for state in self.definition.states:
            if state.name in seen:
                self.problem(
                    f"{state.path}.name",
                    f"duplicate state name {state.name!r} (first defined at {seen[state.name]})",
                )
            else:
                seen[state.name] = state.path
                self.states[state.name] = state
        for region in self.definition.regions:
            if region.name in seen:
                self.problem(
                    f"{region.path}.name",
                    f"region name {region.name!r} is already used at {seen[region.name]}",
                )
            else:
                seen[region.name] = region.path

    def parents(self) -> None:
        for state in self.definition.states:
            parent = state.parent
            if parent is None or parent in self.region_names:
                continue
            owner = self.states.get(parent)
            if owner is None:
                self.problem(f"{state.path}.parent", f"unknown parent state {parent!r}")
            elif owner.kind is StateKind.TERMINAL:
                self.problem(
                    f"{state.path}.parent", f"terminal state {parent!r} cannot have children"
                )
            elif owner.kind is StateKind.PARALLEL:
                self.problem(
                    f"{state.path}.parent",
                    f"parallel state {parent!r} holds states only inside its regions: list "
                    f"{state.name!r} in one of its regions' states",
                )
            elif owner.kind is StateKind.CHOICE:
                self.problem(
                    f"{state.path}.parent", f"choice state {parent!r} cannot have children"
                )
        for state in self.definition.states:
            if self.in_cycle(state):
                self.problem(f"{state.path}.parent", f"state {state.name!r} is its own ancestor")

    def in_cycle(self, state: StateSpec) -> bool:
        """True when walking up from ``state`` (through regions to their parallel state)
        comes back to a node already seen."""
        seen = {state.name}
        parent = state.parent
        while parent is not None:
            if parent in seen:
                return True
            seen.add(parent)
            if parent in self.states:
                parent = self.states[parent].parent
            else:
                parent = self.region_owner.get(parent)
        return False

    def initial_states(self) -> None:
        initial = [s for s in self.definition.states if s.machine_initial]
        nested = [s for s in initial if s.parent is not None]
        for state in nested:
            self.problem(
                f"{state.path}.initial", "only a top-level state can be the machine's initial state"
            )
        top = [s for s in initial if s.parent is None]
        if not top:
            self.problem("states", "no initial state: mark one top-level state 'type: initial'")
        elif len(top) > 1:
            where = ", ".join(f"{s.name!r} ({s.path})" for s in top)
            self.problem("states", f"more than one initial state: {where}")

    def compound_states(self, tree: StateTree) -> None:
        for state in self.definition.states:
            children = tree.children.get(state.name, ())
            if state.kind is StateKind.PARALLEL:
                if not state.regions:
                    self.problem(
                        state.path, f"parallel state {state.name!r} needs at least one region"
                    )
                continue
            if not children:
                if state.initial_child is not None:
                    self.problem(
                        f"{state.path}.initial_child", f"state {state.name!r} has no children"
                    )
                continue
            if state.kind is StateKind.TERMINAL:
                self.problem(state.path, f"terminal state {state.name!r} cannot have children")
            initial = tree.initial_child.get(state.name)
            if initial is None:
                marked = [c for c in children if self.states[c].kind is StateKind.INITIAL]
                detail = "several children are 'type: initial'" if marked else "none is marked"
                self.problem(
                    state.path,
                    f"compound state {state.name!r} needs one initial child ({detail}): "
                    "set 'initial_child: <child>'",
                )
            elif initial not in children:
                self.problem(
                    f"{state.path}.initial_child", f"{initial!r} is not a child of {state.name!r}"
                )
            elif self.states[initial].kind is StateKind.CHOICE:
                self.problem(
                    f"{state.path}.initial_child",
                    f"{initial!r} is a choice state: it cannot be entered by default",
                )

    def regions(self, tree: StateTree) -> None:
        for region in self.definition.regions:
            if not region.states:
                self.problem(f"{region.path}.states", f"region {region.name!r} has no states")
                continue
            if region.initial is None:
                self.problem(
                    f"{region.path}.initial",
                    f"region {region.name!r} needs an initial state ('initial: <state>')",
                )
            elif region.initial not in region.states or region.initial not in self.states:
                self.problem(
                    f"{region.path}.initial",
                    f"{region.initial!r} is not a state of region {region.name!r}",
                )
            elif self.states[region.initial].kind is StateKind.CHOICE:
                self.problem(
                    f"{region.path}.initial",
                    f"{region.initial!r} is a choice state: it cannot be entered by default",
                )
            for i, name in enumerate(region.states):
                member = self.states.get(name)
                if member is not None and member.parent != region.name:
                    self.problem(
                        f"{region.path}.states[{i}]",
                        f"state {name!r} belongs to {member.parent!r}, not region {region.name!r}",
                    )
            for name in tree.descendants(region.name):
                state = self.states[name]
                if state.kind is StateKind.PARALLEL:
                    self.problem(state.path, "a parallel state inside a region is not supported")
                if state.kind is StateKind.TERMINAL:
                    self.problem(state.path, "a terminal state inside a region is not supported")

    def choices(self) -> None:
        """A choice state routes at once: no nesting, actions or timeout of its own."""
        branches: dict[str, int] = {}
        for t in self.definition.transitions:
            for source in t.sources:
                branches[source] = branches.get(source, 0) + 1
        for state in self.definition.states:
            if state.kind is not StateKind.CHOICE:
                continue
            if state.machine_initial:
                self.problem(state.path, f"choice state {state.name!r} cannot be the initial state")
            for key, value in (
                ("regions", state.regions),
                ("on_enter", state.on_enter),
                ("on_exit", state.on_exit),
                ("timeout", state.timeout),
            ):
                if value:
                    self.problem(
                        f"{state.path}.{key}",
                        f"choice state {state.name!r} is never rested in: it cannot have {key} "
                        "(put actions on its transitions)",
                    )
            if not branches.get(state.name):
                self.problem(
                    state.path,
                    f"choice state {state.name!r} needs at least one outgoing transition",
                )

    def transitions(self, tree: StateTree | None = None) -> None:
        unguarded: dict[tuple[str, str], TransitionSpec] = {}
        for t in self.definition.transitions:
            for i, source in enumerate(t.sources):
                where = f"{t.path}.source" if len(t.sources) == 1 else f"{t.path}.source[{i}]"
                self.source(t, source, where, unguarded)
            self.dest(t, tree)
            self.region_scope(t, tree)

    def source(
        self,
        t: TransitionSpec,
        source: str,
        where: str,
        unguarded: dict[tuple[str, str], TransitionSpec],
    ) -> None:
        state = self.states.get(source)
        if state is None:
            what = "a region, not a state" if source in self.region_names else "unknown state"
            self.problem(where, f"{what} {source!r}")
            return
        if state.kind is StateKind.TERMINAL:
            self.problem(where, f"transition out of terminal state {source!r}")
        key = (source, t.trigger)
        first = unguarded.get(key)
        if first is not None:
            if not (first.any_source or t.any_source):  # '*' overlaps are lint findings
                self.problem(
                    t.path,
                    f"unreachable: {first.path} (same source {source!r} and trigger "
                    f"{t.trigger!r}, no guards) always wins",
                )
        elif not t.guards:
            unguarded[key] = t

    def region_scope(self, t: TransitionSpec, tree: StateTree | None) -> None:
        """``region:`` names a region and every source lies inside it."""
        if t.region is None:
            return
        if t.region not in self.region_names:
            self.problem(f"{t.path}.region", f"unknown region {t.region!r}")
            return
        if tree is None:
            return
        for source in t.sources:
            if source in self.states and not tree.is_descendant(source, t.region):
                self.problem(
                    f"{t.path}.region",
                    f"source {source!r} is not a state of region {t.region!r}",
                )

    def dest(self, t: TransitionSpec, tree: StateTree | None) -> None:
        if t.dest not in self.states:
            what = "a region, not a state" if t.dest in self.region_names else "unknown state"
            self.problem(f"{t.path}.dest", f"{what} {t.dest!r}")
            return
        if self.states[t.dest].kind is StateKind.CHOICE and any(
            self.states.get(s) is not None and self.states[s].kind is StateKind.CHOICE
            for s in t.sources
        ):
            self.problem(
                f"{t.path}.dest",
                f"choice state leads to choice state {t.dest!r}: chains are not supported",
            )
        if t.internal and tree is not None:
            for source in t.sources:
                if source in self.states and not tree.is_descendant(t.dest, source):
                    self.problem(
                        f"{t.path}.internal",
                        f"an internal transition must stay inside its source {source!r}",
                    )

    def timeouts(self) -> None:
        for state in self.definition.states:
            timeout = state.timeout
            if timeout is None:
                continue
            if state.kind is StateKind.TERMINAL:
                self.problem(timeout.path, f"terminal state {state.name!r} cannot time out")
            if timeout.dest not in self.states:
                self.problem(f"{timeout.path}.destination", f"unknown state {timeout.dest!r}")

    def context_rules(self) -> None:
        for state in self.definition.meta.validate_context:
            if state != "*" and state not in self.states:
                self.problem(f"meta.validate_context.{state}", f"unknown state {state!r}")


def _normalized(trigger: str, normalizer: str) -> str:
    return trigger.lower() if normalizer == "lower" else trigger.upper()
