"""``MachineIntrospection``: the read-only questions a :class:`StateMachine` answers about its definition.

Which states and triggers exist, what may fire from a state, which timers entering it arms, and
whether (guards evaluated) a trigger or a destination is reachable now. Nothing here changes the
machine; :class:`~pystator.fsm_core.machine.StateMachine` inherits these methods.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pystator.fsm_core.classification import ClassificationRules
from pystator.fsm_core.compiler import CompiledMachine
from pystator.fsm_core.contract import default_context
from pystator.fsm_core.decision import Decider
from pystator.fsm_core.definition import MachineDefinition, StateKind, StateSpec, TransitionSpec
from pystator.fsm_core.errors import InvalidStateError, UndefinedStateError
from pystator.fsm_core.results import (
    DestinationCandidate,
    DestinationCheckResult,
    TimerSpec,
    TransitionResult,
)


class MachineIntrospection:
    """Read-only queries over a compiled machine (mixed into :class:`StateMachine`)."""

    # Set by StateMachine.__init__.
    definition: MachineDefinition
    _compiled: CompiledMachine
    _decider: Decider
    _states_by_name: dict[str, StateSpec]
    classification_rules: ClassificationRules

    if TYPE_CHECKING:  # defined by StateMachine

        @property
        def name(self) -> str: ...

        def process(
            self,
            current_state: str,
            trigger: str,
            context: Mapping[str, Any] | None = None,
            now: datetime | None = None,
        ) -> TransitionResult: ...

    # states and triggers ----------------------------------------------------------------------

    def default_context(self) -> dict[str, Any]:
        """The ``default`` of every ``state_variables`` entry that declares one."""
        return default_context(self.definition)

    def classify(self, context: Mapping[str, Any]) -> str | None:
        """The first state (definition order) whose ``when`` entries all hold for ``context``,
        else ``meta.classification.default_state`` (None when there is none)."""
        return self.classification_rules.classify(context)

    @property
    def states(self) -> tuple[str, ...]:
        """Every state name, in definition order."""
        return tuple(s.name for s in self.definition.states)

    @property
    def triggers(self) -> tuple[str, ...]:
        """Every trigger, sorted."""
        return tuple(sorted(self._compiled.triggers))

    @property
    def transitions(self) -> tuple[TransitionSpec, ...]:
        """The transition rules as defined (state timeouts not included)."""
        return self.definition.transitions

    def has_trigger(self, trigger: str) -> bool:
        """True when some transition (or state timeout) uses ``trigger`` (after
        ``meta.event_normalizer``)."""
        return self._decider.normalize(trigger) in self._compiled.triggers

    def accepts_trigger(self, trigger: str) -> bool:
        """True when ``process`` may be sent ``trigger``: a known trigger, or any trigger when
        ``meta.reject_invalid_events`` is false (unknown ones are then no-ops)."""
        return self.has_trigger(trigger) or not self.definition.meta.reject_invalid_events

    def has_state(self, state: str) -> bool:
        """True for a state name or a valid encoded parallel configuration."""
        try:
            self._decider.row(state)
        except InvalidStateError:
            return False
        return True

    def get_initial_state(self) -> str:
        """The configuration a new entity starts in (a leaf, or an encoded parallel state)."""
        return self._compiled.initial

    def get_available_transitions(self, state_name: str) -> list[TransitionSpec]:
        """The transitions that may fire from ``state_name`` (guards not evaluated), in
        priority order."""
        row = self._decider.row(state_name)
        if row.terminal:
            return []
        found: dict[int, TransitionSpec] = {}
        for per_leaf in row.candidates.values():
            for candidates in per_leaf:
                for candidate in candidates:
                    found.setdefault(candidate.transition.index, candidate.transition)
        return [found[i] for i in sorted(found)]

    def routes_to(self, state: str, destination: str) -> tuple[str, ...]:
        """The triggers (priority order, no duplicates) of the transitions from ``state`` whose
        destination is ``destination`` or a state inside it, a choice state's branches included.
        Delayed (``after:``/``timeout:``) transitions are left out: only their timer fires them.
        Guards are not evaluated."""
        row = self._decider.row(state)
        if row.terminal:
            return ()
        tree = self._compiled.tree
        found: dict[int, str] = {}
        for per_leaf in row.candidates.values():
            for candidates in per_leaf:
                for candidate in candidates:
                    t = candidate.transition
                    if t.after_ms is not None or not t.declared_trigger:
                        continue
                    dests = [t.dest, *(b.transition.dest for b in candidate.branches)]
                    if any(destination in tree.ancestors(d) for d in dests):
                        found.setdefault(t.index, t.trigger)
        return tuple(dict.fromkeys(found[i] for i in sorted(found)))

    def allowed_triggers(self, state: str) -> list[str]:
        """The triggers some transition accepts from ``state`` (guards not evaluated)."""
        row = self._decider.row(state)
        return [] if row.terminal else sorted(row.candidates)

    def is_terminal(self, state: str) -> bool:
        """True when ``state`` (or its configuration) is terminal."""
        return self._decider.row(state).terminal

    def active_states(self, state: str) -> frozenset[str]:
        """Every state active in ``state``'s configuration (leaves and their ancestors)."""
        return frozenset(
            n for n in self._decider.row(state).active if self._compiled.tree.is_state(n)
        )

    def timers_for_state(self, state: str) -> tuple[TimerSpec, ...]:
        """The ``after:``/``timeout:`` timers that entering ``state`` arms."""
        return self._compiled.timers.get(state, ())

    # the documented queries ------------------------------------------------------------------

    @property
    def state_names(self) -> list[str]:
        """Every state name, in definition order."""
        return [s.name for s in self.definition.states]

    @property
    def trigger_names(self) -> list[str]:
        """Every trigger, sorted."""
        return sorted(self._compiled.triggers)

    @property
    def terminal_states(self) -> frozenset[str]:
        """The names of the terminal states."""
        return frozenset(s.name for s in self.definition.states if s.kind is StateKind.TERMINAL)

    def get_state(self, name: str) -> StateSpec | None:
        """The state called ``name`` (a :class:`~pystator.State`), or None."""
        return self._states_by_name.get(name)

    def validate_state(self, name: str) -> None:
        """Raise :class:`UndefinedStateError` unless ``name`` is a state (or a valid encoded
        parallel configuration) of this machine."""
        if not self.has_state(name):
            raise UndefinedStateError(
                f"machine {self.name!r} has no state {name!r}", state=str(name)
            )

    def can_transition(
        self, current_state: str, trigger: str, context: Mapping[str, Any] | None = None
    ) -> bool:
        """True when ``trigger`` would move ``current_state`` now (guards evaluated). Pure."""
        return self.process(current_state, trigger, context).success

    def evaluate_destination(
        self,
        current_state: str,
        destination_state: str,
        context: Mapping[str, Any] | None = None,
    ) -> DestinationCheckResult:
        """Which triggers would take ``current_state`` to ``destination_state`` now (guards
        evaluated against ``context``; pure). For callers that know a target status but not the
        trigger. A destination that is an ancestor of the reached leaf counts as reached."""
        if destination_state not in self._states_by_name:
            return DestinationCheckResult(
                allowed=False,
                source_state=current_state,
                destination_state=destination_state,
                candidate_count=0,
                passing_count=0,
                metadata={"reason": "undefined_destination"},
            )
        triggers = sorted(
            {
                t.trigger
                for t in self.get_available_transitions(current_state)
                if destination_state in self._compiled.tree.ancestors(t.dest)
            }
        )
        candidates = []
        for trigger in triggers:
            result = self.process(current_state, trigger, context)
            reached = (
                result.success
                and result.target_state is not None
                and destination_state in self.active_states(result.target_state)
            )
            reason = None
            if not reached:
                reason = "other_destination" if result.success else result.metadata.get("reason")
            candidates.append(
                DestinationCandidate(
                    trigger=trigger, executable=reached, transition_result=result, reason=reason
                )
            )
        passing = sum(c.executable for c in candidates)
        metadata: dict[str, Any] = {}
        if not candidates:
            metadata["reason"] = "no_transition_to_destination"
        elif not passing:
            metadata["reason"] = "no_executable_transition"
        if passing > 1:
            metadata["ambiguous"] = True
        return DestinationCheckResult(
            allowed=passing > 0,
            source_state=current_state,
            destination_state=destination_state,
            candidate_count=len(candidates),
            passing_count=passing,
            candidates=tuple(candidates),
            metadata=metadata,
        )

    def can_transition_to(
        self,
        current_state: str,
        destination_state: str,
        context: Mapping[str, Any] | None = None,
    ) -> bool:
        """``evaluate_destination(…).allowed``."""
        return self.evaluate_destination(current_state, destination_state, context).allowed
