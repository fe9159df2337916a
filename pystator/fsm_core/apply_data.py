"""Apply-data: a trigger-less data update, routed by the destination states' ``when`` rules.

The data merges into the entity's context (always: the merge is the update). Then, when the
machine sets ``meta.classification.auto_route: true``, the merged context is classified with
the machine's ``when`` rules (:mod:`pystator.fsm_core.classification`, the same rules and the
same evaluator discovery uses: first matching state in definition order wins) and the entity is
moved to that state **through an existing transition** from where it is:

1. the transitions from the current state whose destination is the matching state (or a state
   inside it, through a choice state too) are tried in their priority order, one trigger each,
   exactly as that named event would be processed (guards, context checks, effects);
2. the first whose result reaches the matching state is taken; a trigger whose guards refuse,
   or whose transition would land elsewhere, is skipped (and reported in ``tried``);
3. no transition at all, or none that can fire now: the entity stays where it is, with the
   merged context, and :attr:`ApplyDataResult.route` says why. It never jumps.

Two states matching the same data is resolved like classification: the first in definition
order wins (``pystator lint`` reports overlapping ``when`` rules with a witness record). If that
state cannot be reached, the entity stays; a later matching state is not tried.

The decisions (``process`` of a trigger) are yielded, so the sync and async drivers, the pure
step (:mod:`pystator.fsm_core.step`), the Orchestrator and the fleet all run this one algorithm.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Generator, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from pystator.fsm_core.errors import ContextValidationError
from pystator.fsm_core.results import TransitionResult

if TYPE_CHECKING:
    from pystator.fsm_core.machine import StateMachine

#: The trigger an apply-data event is stored and reported under. Not a valid trigger name
#: (triggers are ``[a-z0-9_]+``), so it never collides with a machine's own.
APPLY_DATA_TRIGGER = "apply-data"
#: ``TransitionResult.metadata`` key holding an apply-data's route report (a plain dict).
APPLY_DATA_KEY = "apply_data"


class Route(StrEnum):
    """What routing made of a data update (``moved``, or why the entity stayed)."""

    MOVED = "moved"  # a transition to the matching state was taken
    AUTO_ROUTE_OFF = "auto_route_off"  # meta.classification.auto_route is not true: merge only
    NO_MATCH = "no_match"  # no state's ``when`` holds for the merged context
    ALREADY_THERE = "already_there"  # the matching state is the current one (or contains it)
    NO_TRANSITION = "no_transition"  # no transition leads from the current state to it
    BLOCKED = "blocked"  # transitions lead there, but none can fire now (guards, checks)


@dataclass(frozen=True, slots=True, kw_only=True)
class RouteAttempt:
    """One trigger tried towards the matching state, and why it was not taken."""

    trigger: str
    reason: str  # guard_rejected, context_validation, other_destination, …


@dataclass(frozen=True, slots=True, kw_only=True)
class ApplyDataResult:
    """The outcome of one data update (pure: nothing was stored).

    ``context`` is the stored context with the data merged over it (and the taken transition's
    declarative effects applied); ``destination`` the state the ``when`` rules chose (None when
    none matched or routing is off); ``trigger`` and ``transition`` the transition taken, when
    the entity moved.
    """

    source_state: str
    target_state: str
    route: Route
    context: Mapping[str, Any]
    destination: str | None = None
    trigger: str | None = None
    transition: TransitionResult | None = None
    tried: tuple[RouteAttempt, ...] = ()

    @property
    def moved(self) -> bool:
        """True when a transition was taken."""
        return self.route is Route.MOVED

    def report(self) -> dict[str, Any]:
        """A JSON-friendly summary (stored on the event's outcome, returned by the API)."""
        return {
            "route": self.route.value,
            "moved": self.moved,
            "source_state": self.source_state,
            "target_state": self.target_state,
            "destination": self.destination,
            "trigger": self.trigger,
            "tried": [{"trigger": a.trigger, "reason": a.reason} for a in self.tried],
        }

    def as_transition_result(self) -> TransitionResult:
        """The taken transition's result, or a successful no-move result (target = source), with
        :meth:`report` under ``metadata["apply_data"]`` and the merged context."""
        if self.transition is not None:
            metadata = {**self.transition.metadata, APPLY_DATA_KEY: self.report()}
            return dataclasses.replace(self.transition, metadata=metadata, context=self.context)
        return TransitionResult(
            success=True,
            source_state=self.source_state,
            target_state=self.source_state,
            trigger=APPLY_DATA_TRIGGER,
            metadata={"noop": True, "reason": self.route.value, APPLY_DATA_KEY: self.report()},
            context=self.context,
        )


#: ``(state, trigger, context, now)``: one decision routing asks of its driver.
RouteDecision = tuple[str, str, Mapping[str, Any], datetime | None]
#: Routing in progress: yields decisions, is sent their results, returns the outcome.
Routing = Generator[RouteDecision, TransitionResult, ApplyDataResult]


def check_data(data: Any) -> Mapping[str, Any]:
    """``data`` when it is a mapping; :class:`ContextValidationError` otherwise."""
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise ContextValidationError(
            f"apply-data needs a mapping (dict) of fields, got {type(data).__name__}",
            errors=["data is not a mapping"],
        )
    return data


def routing(
    machine: StateMachine,
    state: str,
    context: Mapping[str, Any] | None,
    data: Mapping[str, Any] | None,
    now: datetime | None = None,
) -> Routing:
    """The one algorithm of :func:`apply_data` and :func:`aapply_data` (see the module doc)."""
    merged = {**(context or {}), **check_data(data)}
    rules = machine.classification_rules

    def stay(
        route: Route, destination: str | None = None, tried: tuple[RouteAttempt, ...] = ()
    ) -> ApplyDataResult:
        return ApplyDataResult(
            source_state=state,
            target_state=state,
            route=route,
            context=merged,
            destination=destination,
            tried=tried,
        )

    if not rules.auto_route:
        return stay(Route.AUTO_ROUTE_OFF)
    destination = rules.match(merged)
    if destination is None:
        return stay(Route.NO_MATCH)
    if destination in machine.active_states(state):
        return stay(Route.ALREADY_THERE, destination)
    triggers = machine.routes_to(state, destination)
    if not triggers:
        return stay(Route.NO_TRANSITION, destination)
    tried: list[RouteAttempt] = []
    for trigger in triggers:
        result = yield state, trigger, merged, now
        if _reaches(machine, result, destination):
            return ApplyDataResult(
                source_state=state,
                target_state=result.target_state or state,
                route=Route.MOVED,
                context=result.context if result.context is not None else merged,
                destination=destination,
                trigger=trigger,
                transition=result,
                tried=tuple(tried),
            )
        reason = "other_destination" if result.success else result.metadata.get("reason")
        tried.append(RouteAttempt(trigger=trigger, reason=str(reason or "rejected")))
    return stay(Route.BLOCKED, destination, tuple(tried))


def _reaches(machine: StateMachine, result: TransitionResult, destination: str) -> bool:
    if not result.success or result.target_state is None or result.metadata.get("noop"):
        return False
    return destination in machine.active_states(result.target_state)


def apply_data(
    machine: StateMachine,
    state: str,
    context: Mapping[str, Any] | None,
    data: Mapping[str, Any] | None,
    now: datetime | None = None,
) -> ApplyDataResult:
    """Merge ``data`` into ``context`` and route an entity in ``state`` by the ``when`` rules
    (sync guards). Pure: returns what to store; raises only what ``process`` raises."""
    steps = routing(machine, state, context, data, now)
    try:
        decision = next(steps)
        while True:
            decision = steps.send(machine.process(*decision))
    except StopIteration as done:
        outcome: ApplyDataResult = done.value
        return outcome


async def aapply_data(
    machine: StateMachine,
    state: str,
    context: Mapping[str, Any] | None,
    data: Mapping[str, Any] | None,
    now: datetime | None = None,
) -> ApplyDataResult:
    """Like :func:`apply_data`, awaiting async guards."""
    steps = routing(machine, state, context, data, now)
    try:
        decision = next(steps)
        while True:
            decision = steps.send(await machine.aprocess(*decision))
    except StopIteration as done:
        outcome: ApplyDataResult = done.value
        return outcome


__all__ = [
    "APPLY_DATA_KEY",
    "APPLY_DATA_TRIGGER",
    "ApplyDataResult",
    "Route",
    "RouteAttempt",
    "aapply_data",
    "apply_data",
    "check_data",
    "routing",
]
