"""Static review of a machine: likely mistakes that still load.

=======================  ========  ===========================================================
code                     severity  finding
=======================  ========  ===========================================================
unreachable_state        WARNING   no sequence of transitions from the initial state enters it
dead_end                 WARNING   a non-terminal leaf state with no way out
dead_transition          WARNING   always shadowed by an earlier unguarded transition
nondeterministic         WARNING   several unguarded transitions share a source and trigger
missing_guard            WARNING   a guard name the registry does not know
missing_action           WARNING   an action name the registry does not know
choice_without_default   WARNING   every branch of a choice state is guarded
overlapping_when         WARNING   two states' ``when`` rules on a common field accept one record
unknown_meta_key         INFO      a ``meta`` key the engine ignores (allowed, for tooling)
deprecated_form          INFO      one of pystator's own forms a documented key replaces
=======================  ========  ===========================================================

Registry checks run when registries are known: those given, else the machine's own (a
definition passed as a mapping has none, so those checks are skipped). ``overlapping_when`` is
proved by a witness record (see :mod:`pystator.fsm_core.when_overlap`), never guessed.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from pystator.fsm_core.actions import ActionRegistry
from pystator.fsm_core.conditions import names_in
from pystator.fsm_core.definition import ActionSpec, MachineDefinition, StateKind, TransitionSpec
from pystator.fsm_core.guards import GuardRegistry
from pystator.fsm_core.loading import check_definition
from pystator.fsm_core.machine import StateMachine
from pystator.fsm_core.parsing.document import META_KEYS
from pystator.fsm_core.tree import StateTree
from pystator.fsm_core.when_overlap import find_overlaps


class LintSeverity(str, Enum):
    """How bad a finding is."""

    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


SEVERITY_ORDER = {LintSeverity.INFO: 0, LintSeverity.WARNING: 1, LintSeverity.ERROR: 2}


@dataclass(frozen=True, slots=True)
class LintWarning:
    """One finding: a stable ``code``, its severity, a message and structured details."""

    code: str
    severity: LintSeverity
    message: str
    context: Mapping[str, Any] = field(default_factory=dict)


def lint(
    target: StateMachine | Mapping[str, Any],
    *,
    guards: GuardRegistry | None = None,
    actions: ActionRegistry | None = None,
) -> list[LintWarning]:
    """Every finding for a machine (or a definition mapping, which must load)."""
    findings: list[LintWarning] = []
    if isinstance(target, StateMachine):
        machine = target
        guards = guards if guards is not None else machine.guard_registry
        actions = actions if actions is not None else machine.action_registry
    else:
        _definition, _problems, deprecations = check_definition(target)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            machine = StateMachine.from_dict(target)
        for problem in deprecations:
            findings.append(_info("deprecated_form", str(problem), path=problem.path))
    return findings + _Linter(machine.definition, guards, actions).run()


def _info(code: str, message: str, **context: Any) -> LintWarning:
    return LintWarning(code, LintSeverity.INFO, message, context)


def _warning(code: str, message: str, **context: Any) -> LintWarning:
    return LintWarning(code, LintSeverity.WARNING, message, context)


class _Linter:
    def __init__(
        self,
        definition: MachineDefinition,
        guards: GuardRegistry | None,
        actions: ActionRegistry | None,
    ) -> None:
        self.d = definition
        self.tree = StateTree(definition)
        self.guards = guards
        self.actions = actions
        self.found: list[LintWarning] = []
        self.from_source: dict[str, list[TransitionSpec]] = {}
        for t in definition.transitions:
            for source in t.sources:
                self.from_source.setdefault(source, []).append(t)

    def run(self) -> list[LintWarning]:
        self.unreachable()
        self.dead_ends()
        self.shadowing()
        self.choices()
        self.when_overlaps()
        self.registries()
        self.meta_keys()
        return self.found

    # reachability ---------------------------------------------------------------------------

    def unreachable(self) -> None:
        reached = self._reachable()
        for state in self.d.states:
            if state.name not in reached:
                self.found.append(
                    _warning(
                        "unreachable_state",
                        f"State {state.name!r} is not reachable from the initial state",
                        state=state.name,
                    )
                )

    def _reachable(self) -> set[str]:
        reached: set[str] = set()
        initial = next(s.name for s in self.d.states if s.machine_initial and s.parent is None)
        self._enter(initial, reached)
        fallback = self.d.error_policy.default_fallback
        if fallback is not None:
            self._enter(fallback, reached)
        changed = True
        while changed:
            before = len(reached)
            for t in self.d.transitions:
                if any(s in reached for s in t.sources):
                    self._enter(t.dest, reached)
            for state in self.d.states:
                if state.timeout is not None and state.name in reached:
                    self._enter(state.timeout.dest, reached)
            changed = len(reached) != before
        return reached

    def _enter(self, dest: str, reached: set[str]) -> None:
        tree = self.tree
        nodes = [*tree.ancestors(dest), *tree.default_entry(dest)]
        for node in tree.ancestors(dest):
            if tree.is_parallel(node):
                nodes += tree.default_entry(node)
        reached.update(n for n in nodes if tree.is_state(n))

    # dead ends and shadowing ----------------------------------------------------------------

    def dead_ends(self) -> None:
        timeouts = {s.name for s in self.d.states if s.timeout is not None}
        for state in self.d.states:
            if state.kind in (StateKind.TERMINAL, StateKind.CHOICE):
                continue
            if not self.tree.is_leaf(state.name):
                continue
            ways_out = [
                n for n in self.tree.ancestors(state.name) if n in self.from_source or n in timeouts
            ]
            if not ways_out:
                self.found.append(
                    _warning(
                        "dead_end",
                        f"Non-terminal state {state.name!r} has no outbound transitions",
                        state=state.name,
                    )
                )

    def shadowing(self) -> None:
        """Per leaf and trigger, candidates after the first unguarded one never fire."""
        live: set[int] = set()
        applies: set[int] = set()
        for leaf in self._leaves():
            by_trigger: dict[str, list[TransitionSpec]] = {}
            for node in self.tree.ancestors(leaf):
                for t in self.from_source.get(node, ()):
                    by_trigger.setdefault(t.trigger, []).append(t)
            for rules in by_trigger.values():
                shadowed = False
                for t in rules:
                    applies.add(t.index)
                    if not shadowed:
                        live.add(t.index)
                    shadowed = shadowed or not t.guards
        for t in self.d.transitions:
            if t.index in applies and t.index not in live:
                self.found.append(
                    _warning(
                        "dead_transition",
                        f"Transition {t.path} ({t.trigger!r}) can never fire: an earlier "
                        "transition without guards always wins",
                        transition=t.path,
                        trigger=t.trigger,
                    )
                )
        self._nondeterminism()

    def _nondeterminism(self) -> None:
        for source, rules in self.from_source.items():
            counts: dict[str, int] = {}
            for t in rules:
                if not t.guards:
                    counts[t.trigger] = counts.get(t.trigger, 0) + 1
            for trigger, count in counts.items():
                if count > 1:
                    self.found.append(
                        _warning(
                            "nondeterministic",
                            f"State {source!r} has multiple unguarded transitions for trigger "
                            f"{trigger!r}",
                            state=source,
                            trigger=trigger,
                        )
                    )

    def _leaves(self) -> Iterator[str]:
        for state in self.d.states:
            if self.tree.is_leaf(state.name) and state.kind not in (
                StateKind.TERMINAL,
                StateKind.CHOICE,
            ):
                yield state.name

    def choices(self) -> None:
        for state in self.d.states:
            if state.kind is not StateKind.CHOICE:
                continue
            branches = self.from_source.get(state.name, [])
            for i, t in enumerate(branches):
                if any(not earlier.guards for earlier in branches[:i]):
                    self.found.append(
                        _warning(
                            "dead_transition",
                            f"Branch {t.path} of choice state {state.name!r} can never be "
                            "taken: an earlier branch without guards always wins",
                            transition=t.path,
                            state=state.name,
                        )
                    )
            if branches and all(t.guards for t in branches):
                self.found.append(
                    _warning(
                        "choice_without_default",
                        f"Every branch of choice state {state.name!r} is guarded: an event "
                        "routed there is rejected when none passes (add an unguarded last branch)",
                        state=state.name,
                    )
                )

    def when_overlaps(self) -> None:
        paths = {s.name: s.path for s in self.d.states}
        for overlap in find_overlaps(self.d.states):
            first, second = overlap.first, overlap.second
            self.found.append(
                _warning(
                    "overlapping_when",
                    f"States {first!r} ({paths[first]}) and {second!r} ({paths[second]}) both "
                    f"match {dict(overlap.witness)!r} (when rules on {', '.join(overlap.fields)}):"
                    f" {first!r} is listed first and wins",
                    state=first,
                    other=second,
                    fields=list(overlap.fields),
                    witness=dict(overlap.witness),
                )
            )

    # registries and meta --------------------------------------------------------------------

    def registries(self) -> None:
        if self.guards is not None:
            for t in self.d.transitions:
                for guard in t.guards:
                    names = [guard.name] if guard.name else []
                    if guard.condition is not None:
                        names += list(names_in(guard.condition))
                    for name in names:
                        if name not in self.guards:
                            self.found.append(
                                _warning(
                                    "missing_guard",
                                    f"Guard {name!r} ({t.path}) is not registered",
                                    guard=name,
                                    transition=t.path,
                                )
                            )
        if self.actions is not None:
            for where, specs in self._action_lists():
                for name in _named_actions(specs):
                    if name not in self.actions:
                        self.found.append(
                            _warning(
                                "missing_action",
                                f"Action {name!r} ({where}) is not registered",
                                action=name,
                                where=where,
                            )
                        )

    def _action_lists(self) -> Iterator[tuple[str, tuple[ActionSpec, ...]]]:
        for state in self.d.states:
            yield f"{state.path}.on_enter", state.on_enter
            yield f"{state.path}.on_exit", state.on_exit
        for t in self.d.transitions:
            yield f"{t.path}.actions", t.actions

    def meta_keys(self) -> None:
        for key in self.d.meta.raw:
            if key not in META_KEYS:
                self.found.append(
                    _info(
                        "unknown_meta_key",
                        f"meta.{key} is not a key the engine reads (kept for tooling)",
                        key=str(key),
                    )
                )


def _named_actions(specs: tuple[ActionSpec, ...]) -> Iterator[str]:
    for spec in specs:
        if spec.branch is not None:
            yield from _named_actions(spec.branch.then)
            yield from _named_actions(spec.branch.otherwise)
        elif spec.is_named:
            yield spec.name
