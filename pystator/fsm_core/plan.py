"""Resolve a transition's context-dependent actions for one event.

A transition whose action lists hold only named actions has a fixed, precomputed result. One
with declarative effects, ``branch`` entries or per-action ``when`` carries a :class:`Plan` (its
:class:`~pystator.fsm_core.results.PlanStep` entries in exit → transition → enter order);
:meth:`Plan.resolve` walks it against a working copy of the context: effects change the copy,
conditions are evaluated on the copy as it is at that point, and named actions are collected (to
run after commit, with the final context). The caller's context is never mutated.

A plan made only of effects and unconditional named actions (the common case) keeps the
precomputed action lists and only runs the effects.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from pystator.fsm_core.definition import ActionSpec
from pystator.fsm_core.effects import Effect, EffectKind
from pystator.fsm_core.results import ActionCall, ActionPhase, PlanStep, TransitionResult

_NO_PARAMS: Mapping[str, Any] = MappingProxyType({})
#: Passed to effects when no ``timestamp`` effect needs the time (the others ignore it).
_UNUSED_TIME = datetime(1970, 1, 1, tzinfo=UTC)


def call_of(spec: ActionSpec, phase: ActionPhase, state: str | None) -> ActionCall:
    """The planned call of a named action."""
    params = MappingProxyType(dict(spec.params)) if spec.params else _NO_PARAMS
    return ActionCall(
        name=spec.name,
        phase=phase,
        params=params,
        state=state,
        retry=spec.retry,
        retry_backoff=spec.retry_backoff,
        timeout=spec.timeout,
    )


class Plan:
    """The context-dependent part of one precomputed transition result."""

    __slots__ = ("effects", "needs_clock", "steps")

    def __init__(self, steps: tuple[PlanStep, ...]) -> None:
        self.steps = steps
        conditional = any(s.spec.when is not None or s.spec.branch is not None for s in steps)
        #: Only effects and unconditional calls: the effects, in order (None otherwise).
        self.effects: tuple[Effect, ...] | None = (
            None if conditional else tuple(s.spec.effect for s in steps if s.spec.effect)
        )
        self.needs_clock = any(_has_timestamp(s.spec) for s in steps)

    def resolve(
        self,
        result: TransitionResult,
        context: Mapping[str, Any],
        now: datetime | None,
        clock: Callable[[], datetime],
    ) -> TransitionResult:
        """``result`` carried out against ``context``: a new result holding the new context."""
        moment = now or (clock() if self.needs_clock else _UNUSED_TIME)
        ctx = dict(context)
        if self.effects is not None:
            for effect in self.effects:
                effect.run(ctx, moment)
            return _copy(result, ctx, dict(result.metadata), None)
        walk = _Walk(ctx, moment)
        for step in self.steps:
            walk.run(step.spec, step.phase, step.state)
        metadata = dict(result.metadata)  # a result built per call gets its own dict
        if walk.skipped:
            metadata["skipped_actions"] = walk.skipped
        return _copy(result, ctx, metadata, walk)

    def __repr__(self) -> str:
        return f"Plan({len(self.steps)} steps)"


def _has_timestamp(spec: ActionSpec) -> bool:
    if spec.effect is not None:
        return spec.effect.kind is EffectKind.TIMESTAMP
    if spec.branch is not None:
        return any(map(_has_timestamp, spec.branch.then + spec.branch.otherwise))
    return False


class _Walk:
    __slots__ = ("ctx", "enter", "exit", "now", "skipped", "transition")

    def __init__(self, ctx: dict[str, Any], now: datetime) -> None:
        self.ctx = ctx
        self.now = now
        self.exit: list[ActionCall] = []
        self.transition: list[ActionCall] = []
        self.enter: list[ActionCall] = []
        self.skipped: list[str] = []

    def run(self, spec: ActionSpec, phase: ActionPhase, state: str | None) -> None:
        if spec.when is not None and not spec.when(self.ctx):
            self.skipped.append(f"{spec.name} (when {spec.when_label})")
            return
        if spec.effect is not None:
            spec.effect.run(self.ctx, self.now)
        elif spec.branch is not None:
            branch = spec.branch
            for inner in branch.then if branch.when(self.ctx) else branch.otherwise:
                self.run(inner, phase, state)
        elif phase is ActionPhase.EXIT:
            self.exit.append(call_of(spec, phase, state))
        elif phase is ActionPhase.TRANSITION:
            self.transition.append(call_of(spec, phase, state))
        else:
            self.enter.append(call_of(spec, phase, state))


# Copying a frozen result slot by slot through its descriptors is about twice as fast as the
# generated ``__init__`` (measured); it runs once per transition that has effects.
def _slot(
    name: str,
) -> tuple[Callable[[TransitionResult], Any], Callable[[TransitionResult, Any], None]]:
    descriptor: Any = getattr(TransitionResult, name)
    return descriptor.__get__, descriptor.__set__


_SLOTS = tuple(_slot(name) for name in TransitionResult.__slots__)
_SET_CONTEXT = _slot("context")[1]
_SET_METADATA = _slot("metadata")[1]
_SET_EXIT = _slot("exit_actions")[1]
_SET_TRANSITION = _slot("transition_actions")[1]
_SET_ENTER = _slot("enter_actions")[1]


def _copy(
    result: TransitionResult,
    context: dict[str, Any],
    metadata: dict[str, Any],
    walk: _Walk | None,
) -> TransitionResult:
    """``result`` with a new context (and the walked action lists, if any)."""
    new: TransitionResult = object.__new__(TransitionResult)
    for get, put in _SLOTS:
        put(new, get(result))
    _SET_CONTEXT(new, context)
    _SET_METADATA(new, metadata)
    if walk is not None:
        _SET_EXIT(new, tuple(walk.exit))
        _SET_TRANSITION(new, tuple(walk.transition))
        _SET_ENTER(new, tuple(walk.enter))
    return new
