"""Compile a validated definition into lookup tables.

For every state that can be active on its own, :class:`CompiledMachine` precomputes a
:class:`Row`: trigger → ordered candidate transitions (the state's own first, then its
ancestors'), each with its complete :class:`TransitionResult` (exit → transition → enter
actions in LCA order, timers to arm and cancel). ``process`` is then a dictionary lookup plus
guard calls. Parallel configurations get the same rows, built on first use and cached.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from pystator.fsm_core.configuration import ParallelConfiguration, split_encoded
from pystator.fsm_core.contract import ContractCheck, compile_contract
from pystator.fsm_core.definition import (
    GuardSpec,
    MachineDefinition,
    StateKind,
    TransitionSpec,
)
from pystator.fsm_core.errors import InvalidStateError, UndefinedStateError
from pystator.fsm_core.plan import Plan, call_of
from pystator.fsm_core.results import (
    ActionCall,
    ActionPhase,
    PlanStep,
    TimerKind,
    TimerSpec,
    TransitionResult,
)
from pystator.fsm_core.tree import StateTree

#: Parallel configurations whose rows are kept (their number is finite; this bounds memory).
MAX_CACHED_CONFIGURATIONS = 4096


@dataclass(frozen=True, slots=True)
class Candidate:
    """A transition that may fire from a configuration, with its precomputed success result.

    A transition into a choice state has ``branches``: one candidate per branch, each the whole
    route (source → the branch's destination, both transitions' actions), tried in order.
    """

    transition: TransitionSpec
    source: str
    guards: tuple[GuardSpec, ...]
    result: TransitionResult | None  # None for candidates of multi-region configurations
    branches: tuple[Candidate, ...] = ()


@dataclass(slots=True)
class Row:
    """Everything ``process`` needs for one configuration."""

    label: str
    active: frozenset[str]
    leaves: tuple[str, ...]
    terminal: bool
    required_keys: tuple[str, ...]
    candidates: dict[str, tuple[tuple[Candidate, ...], ...]]  # trigger -> per-leaf candidates
    fast: dict[str, TransitionResult]  # trigger -> result needing no guard, check or context
    contract: ContractCheck | None = None
    combined: dict[tuple[int, ...], TransitionResult] = field(default_factory=dict)


class CompiledMachine:
    """Lookup tables for one definition; immutable apart from its bounded caches."""

    def __init__(self, definition: MachineDefinition) -> None:
        self.definition = definition
        self.tree = StateTree(definition)
        self.transitions = definition.transitions + _timeout_transitions(definition)
        self.choices = frozenset(s.name for s in definition.states if s.kind is StateKind.CHOICE)
        self.from_source: dict[str, dict[str, list[TransitionSpec]]] = {}
        self.branches: dict[str, list[TransitionSpec]] = {}
        for t in self.transitions:
            for source in t.sources:
                if source in self.choices:
                    self.branches.setdefault(source, []).append(t)
                else:
                    self.from_source.setdefault(source, {}).setdefault(t.trigger, []).append(t)
        self.triggers = frozenset(
            t.trigger for t in self.transitions if not any(s in self.choices for s in t.sources)
        )
        self.timers = _timers(definition)
        self.terminal = frozenset(s.name for s in definition.states if s.kind is StateKind.TERMINAL)
        self.contract = compile_contract(definition)
        self._routes: dict[tuple[int, int], TransitionSpec] = {}
        self.inside_parallel = frozenset(
            name
            for name in self.tree.states
            if any(self.tree.is_parallel(a) for a in self.tree.ancestors(name))
        )
        self.rows: dict[str, Row] = {}
        for name in self.tree.states:
            if name not in self.inside_parallel:
                self.rows[name] = self._row(name, frozenset(self.tree.ancestors(name)), (name,))
        self._parallel_rows: dict[str, Row] = {}
        self.initial = self._initial()

    # configurations -------------------------------------------------------------------------

    def _initial(self) -> str:
        top = next(s.name for s in self.definition.states if s.machine_initial and s.parent is None)
        active = {top, *self.tree.default_entry(top)}
        return self.encode(frozenset(active))

    def encode(self, active: frozenset[str]) -> str:
        """The stored string of a complete active configuration."""
        tree = self.tree
        parallel = [n for n in active if tree.is_parallel(n)]
        if parallel:
            top = min(parallel, key=tree.depth.__getitem__)
            regions = tuple(
                (region, self._deepest(n for n in active if tree.is_descendant(n, region)))
                for region in tree.regions[top]
            )
            return ParallelConfiguration(top, regions).encoded
        return self._deepest(n for n in active if tree.is_state(n))

    def _deepest(self, nodes: Iterable[str]) -> str:
        return max(nodes, key=lambda n: (self.tree.depth[n], self.tree.order[n]))

    def row(self, state: str) -> Row:
        """The row of ``state`` (a state name or an encoded parallel configuration)."""
        row = self.rows.get(state)
        if row is not None:
            return row
        row = self._parallel_rows.get(state)
        if row is not None:
            return row
        return self._decode(state)

    def _decode(self, text: str) -> Row:
        if not isinstance(text, str):
            raise UndefinedStateError(f"a state must be a string, got {type(text).__name__}")
        if text in self.tree.states:
            enclosing = next(a for a in self.tree.ancestors(text) if self.tree.is_parallel(a))
            raise InvalidStateError(
                f"state {text!r} is part of parallel state {enclosing!r}: pass the whole "
                f"configuration, e.g. {self.default_configuration(enclosing)!r}",
                state=text,
            )
        parsed = split_encoded(text)
        if parsed is None or not self.tree.is_parallel(parsed[0]):
            raise UndefinedStateError(f"undefined state {text!r}", state=text)
        parallel, pairs = parsed
        regions = self.tree.regions[parallel]
        if tuple(region for region, _ in pairs) != regions:
            raise InvalidStateError(
                f"configuration {text!r} must name the regions of {parallel!r} in order: "
                f"{', '.join(regions)}",
                state=text,
            )
        active = set(self.tree.ancestors(parallel))
        for region, leaf in pairs:
            if leaf not in self.tree.states or not self.tree.is_descendant(leaf, region):
                raise InvalidStateError(
                    f"configuration {text!r}: {leaf!r} is not a state of region {region!r}",
                    state=text,
                )
            active.update(self.tree.ancestors(leaf))
        leaves = tuple(leaf for _, leaf in pairs)
        row = self._row(text, frozenset(active), leaves)
        if len(self._parallel_rows) < MAX_CACHED_CONFIGURATIONS:
            self._parallel_rows[text] = row
        return row

    def default_configuration(self, parallel: str) -> str:
        """The configuration a parallel state starts in."""
        active = {*self.tree.ancestors(parallel), *self.tree.default_entry(parallel)}
        return self.encode(frozenset(active))

    # rows -----------------------------------------------------------------------------------

    def _row(self, label: str, active: frozenset[str], leaves: tuple[str, ...]) -> Row:
        triggers: dict[str, list[tuple[Candidate, ...]]] = {}
        single = len(leaves) == 1
        for leaf in leaves:
            per_leaf: dict[str, list[Candidate]] = {}
            for node in self.tree.ancestors(leaf):
                for trigger, rules in self.from_source.get(node, {}).items():
                    for t in rules:
                        candidate = self._candidate(label, active, t, node, single)
                        per_leaf.setdefault(trigger, []).append(candidate)
            for trigger, found in per_leaf.items():
                triggers.setdefault(trigger, []).append(tuple(found))
        candidates = {trigger: tuple(lists) for trigger, lists in triggers.items()}
        required = self._required_keys(active)
        fast = {}
        if single and not required and self.contract is None:
            for trigger, (first, *_rest) in candidates.items():
                head = first[0] if first else None
                if head is None or head.guards or head.branches or head.result is None:
                    continue
                if head.result.plan is None:
                    fast[trigger] = head.result
        return Row(
            label=label,
            active=active,
            leaves=leaves,
            terminal=any(n in self.terminal for n in active),
            required_keys=required,
            candidates=candidates,
            fast=fast,
            contract=self.contract,
        )

    def _candidate(
        self, label: str, active: frozenset[str], t: TransitionSpec, node: str, single: bool
    ) -> Candidate:
        if t.dest not in self.choices:
            result = self.apply(label, active, [(t, node)]) if single else None
            return Candidate(transition=t, source=node, guards=t.guards, result=result)
        branches = []
        for branch in self.branches.get(t.dest, ()):
            route = self._route(t, branch)
            result = self.apply(label, active, [(route, node)]) if single else None
            branches.append(
                Candidate(transition=route, source=node, guards=branch.guards, result=result)
            )
        return Candidate(
            transition=t, source=node, guards=t.guards, result=None, branches=tuple(branches)
        )

    def _route(self, incoming: TransitionSpec, branch: TransitionSpec) -> TransitionSpec:
        """One transition for "incoming, then this branch of its choice state"."""
        key = (incoming.index, branch.index)
        route = self._routes.get(key)
        if route is None:
            route = dataclasses.replace(
                incoming,
                dest=branch.dest,
                actions=incoming.actions + branch.actions,
                guards=(),
                internal=False,
                index=len(self.transitions) + len(self._routes),
            )
            self._routes[key] = route
        return route

    def _required_keys(self, active: frozenset[str]) -> tuple[str, ...]:
        rules = self.definition.meta.validate_context
        keys: list[str] = list(rules.get("*", ()))
        for state in sorted(active, key=self.tree.order.__getitem__):
            keys.extend(k for k in rules.get(state, ()) if k not in keys)
        return tuple(keys)

    # the transition itself ------------------------------------------------------------------

    def apply(
        self, label: str, active: frozenset[str], selected: Sequence[tuple[TransitionSpec, str]]
    ) -> TransitionResult:
        """The result of taking ``selected`` (transition, source) pairs from ``active``."""
        tree = self.tree
        exits: set[str] = set()
        entries: list[str] = []
        for t, source in selected:
            domain = self._domain(t, source)
            exits.update(self.exit_set(active, t, source))
            chain = tree.ancestors(t.dest)
            path = chain if domain is None else chain[: chain.index(domain)]
            entries.extend(reversed(path))
            entries.extend(tree.default_entry(t.dest))
        remaining = set(active - exits) | set(entries)
        entries.extend(self._complete(remaining))
        new_active = frozenset((active - exits) | set(entries))
        return self._result(
            label,
            self.encode(new_active),
            selected[0][0].trigger,
            exited=self._innermost_first(exits),
            transition=[
                PlanStep(ActionPhase.TRANSITION, None, a) for t, _ in selected for a in t.actions
            ],
            entered=self._outermost_first(entries),
        )

    def entry(self, trigger: str) -> TransitionResult:
        """The result of a new entity entering the initial configuration: every state of it
        entered, outermost first (their ``on_enter`` entries and timers), as a transition into
        that configuration enters them; nothing is exited. ``source_state`` is empty."""
        return self._result(
            "",
            self.initial,
            trigger,
            exited=[],
            transition=[],
            entered=self._outermost_first(self.row(self.initial).active),
        )

    def _result(
        self,
        label: str,
        target: str,
        trigger: str,
        *,
        exited: Sequence[str],
        transition: Sequence[PlanStep],
        entered: Sequence[str],
    ) -> TransitionResult:
        """The result leaving ``exited`` and entering ``entered`` (each in the order its actions
        run), with ``transition``'s entries between them."""
        internal = not exited and not entered
        steps = [
            *self._steps(exited, ActionPhase.EXIT),
            *transition,
            *self._steps(entered, ActionPhase.ENTER),
        ]
        dynamic = any(step.spec.dynamic for step in steps)
        calls: dict[ActionPhase, list[ActionCall]] = {phase: [] for phase in ActionPhase}
        for step in steps:
            if _is_fixed(step):
                calls[step.phase].append(call_of(step.spec, step.phase, step.state))
        return TransitionResult(
            success=True,
            source_state=label,
            target_state=target,
            trigger=trigger,
            exit_actions=tuple(calls[ActionPhase.EXIT]),
            transition_actions=tuple(calls[ActionPhase.TRANSITION]),
            enter_actions=tuple(calls[ActionPhase.ENTER]),
            states_exited=tuple(exited),
            states_entered=tuple(entered),
            timers_to_arm=() if internal else self._timers_of(entered),
            timers_to_cancel=() if internal else self._timers_of(exited),
            plan=Plan(tuple(steps)) if dynamic else None,
        )

    def forced(
        self, label: str, active: frozenset[str], dest: str, trigger: str
    ) -> TransitionResult:
        """The result of leaving everything active for ``dest`` (an error policy's fallback)."""
        top = next(n for n in active if self.tree.is_state(n) and self.tree.parent.get(n) is None)
        jump = TransitionSpec(
            trigger=trigger,
            sources=(top,),
            dest=dest,
            path="error_policy.default_fallback",
            index=-1,
            declared_trigger=False,
        )
        return self.apply(label, active, [(jump, top)])

    def exit_calls(self, active: frozenset[str], root: str) -> tuple[ActionCall, ...]:
        """The exit actions of leaving ``root`` and every active state inside it, deepest first
        (named, unconditional ones: what a transition's ``exit_actions`` would list)."""
        inside = (n for n in active if n == root or self.tree.is_descendant(n, root))
        return tuple(
            call_of(step.spec, step.phase, step.state)
            for step in self._steps(self._innermost_first(inside), ActionPhase.EXIT)
            if _is_fixed(step)
        )

    def _outermost_first(self, nodes: Iterable[str]) -> list[str]:
        """The states among ``nodes`` in the order their entry actions run: outermost first."""
        tree = self.tree
        return sorted(
            {n for n in nodes if tree.is_state(n)}, key=lambda n: (tree.depth[n], tree.order[n])
        )

    def _innermost_first(self, nodes: Iterable[str]) -> list[str]:
        """The states among ``nodes`` in the order their exit actions run: deepest first."""
        tree = self.tree
        return sorted(
            (n for n in nodes if tree.is_state(n)), key=lambda n: (-tree.depth[n], -tree.order[n])
        )

    def exit_set(self, active: frozenset[str], t: TransitionSpec, source: str) -> set[str]:
        """The active nodes that taking ``t`` from ``source`` leaves."""
        domain = self._domain(t, source)
        if domain is None:
            return set(active)
        return {n for n in active if n != domain and self.tree.is_descendant(n, domain)}

    def _domain(self, t: TransitionSpec, source: str) -> str | None:
        if t.internal and self.tree.is_descendant(t.dest, source):
            return source
        return self.tree.lowest_common_ancestor(source, t.dest)

    def _complete(self, active: set[str]) -> list[str]:
        """Default-enter every region of an active parallel state that has no active state."""
        added: list[str] = []
        for node in sorted(active, key=self.tree.order.__getitem__):
            for region in self.tree.regions.get(node, ()):
                if region not in active:
                    path = [region, *self.tree.initial_path(region)]
                    added.extend(path)
        return added

    def _steps(self, states: Sequence[str], phase: ActionPhase) -> list[PlanStep]:
        steps: list[PlanStep] = []
        for name in states:
            spec = self.tree.states[name]
            for action in spec.on_exit if phase is ActionPhase.EXIT else spec.on_enter:
                steps.append(PlanStep(phase, name, action))
        return steps

    def _timers_of(self, states: Sequence[str]) -> tuple[TimerSpec, ...]:
        return tuple(spec for name in states for spec in self.timers.get(name, ()))


def _is_fixed(step: PlanStep) -> bool:
    """A named, unconditional action: listed in a result's action calls (others run through
    the result's plan)."""
    return step.spec.is_named and step.spec.when is None


def _timeout_transitions(definition: MachineDefinition) -> tuple[TransitionSpec, ...]:
    base = len(definition.transitions)
    found = [s for s in definition.states if s.timeout is not None]
    out = []
    for i, state in enumerate(found):
        timeout = state.timeout
        assert timeout is not None
        out.append(
            TransitionSpec(
                trigger=timeout.trigger,
                sources=(state.name,),
                dest=timeout.dest,
                path=timeout.path,
                index=base + i,
            )
        )
    return tuple(out)


def _timers(definition: MachineDefinition) -> dict[str, tuple[TimerSpec, ...]]:
    timers: dict[str, list[TimerSpec]] = {}
    for t in definition.transitions:
        if t.after_ms is None:
            continue
        for source in t.sources:
            timers.setdefault(source, []).append(
                TimerSpec(
                    key=f"after:{t.index}:{source}",
                    state=source,
                    trigger=t.trigger,
                    delay_ms=t.after_ms,
                )
            )
    for state in definition.states:
        if state.timeout is not None:
            timers.setdefault(state.name, []).append(
                TimerSpec(
                    key=f"timeout:{state.name}",
                    state=state.name,
                    trigger=state.timeout.trigger,
                    delay_ms=state.timeout.delay_ms,
                    kind=TimerKind.TIMEOUT,
                )
            )
    return {name: tuple(specs) for name, specs in timers.items()}
