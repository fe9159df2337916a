"""Resolve a transition's context-dependent actions for one event.

A transition whose action lists hold only named actions has a fixed, precomputed result. One
with declarative effects, ``branch`` entries or per-action ``when`` carries a plan
(:class:`~pystator.fsm_core.results.PlanStep` in exit → transition → enter order); :func:`resolve`
walks it against a working copy of the context: effects change the copy, conditions are evaluated
on the copy as it is at that point, and named actions are collected (to run after commit, with the
final context). The caller's context is never mutated.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Any

from pystator.fsm_core.definition import ActionSpec
from pystator.fsm_core.results import ActionCall, ActionPhase, TransitionResult

_NO_PARAMS: Mapping[str, Any] = MappingProxyType({})


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


class _Walk:
    __slots__ = ("calls", "ctx", "now", "skipped")

    def __init__(self, ctx: dict[str, Any], now: datetime) -> None:
        self.ctx = ctx
        self.now = now
        self.calls: dict[ActionPhase, list[ActionCall]] = {phase: [] for phase in ActionPhase}
        self.skipped: list[str] = []

    def run(self, spec: ActionSpec, phase: ActionPhase, state: str | None) -> None:
        if spec.when is not None and not spec.when(self.ctx):
            self.skipped.append(f"{spec.name} (when {spec.when_label})")
            return
        if spec.effect is not None:
            spec.effect.apply(self.ctx, self.now)
        elif spec.branch is not None:
            branch = spec.branch
            for inner in branch.then if branch.when(self.ctx) else branch.otherwise:
                self.run(inner, phase, state)
        else:
            self.calls[phase].append(call_of(spec, phase, state))


def resolve(
    result: TransitionResult, context: Mapping[str, Any], now: datetime
) -> TransitionResult:
    """``result`` with its plan carried out against ``context`` (a new result and context)."""
    walk = _Walk(dict(context), now)
    for step in result.plan:
        walk.run(step.spec, step.phase, step.state)
    metadata = result.metadata
    if walk.skipped:
        metadata = {**metadata, "skipped_actions": walk.skipped}
    return dataclasses.replace(
        result,
        exit_actions=tuple(walk.calls[ActionPhase.EXIT]),
        transition_actions=tuple(walk.calls[ActionPhase.TRANSITION]),
        enter_actions=tuple(walk.calls[ActionPhase.ENTER]),
        context=walk.ctx,
        metadata=metadata,
    )
