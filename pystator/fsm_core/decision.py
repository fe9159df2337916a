"""``process``: look the configuration's row up, check the context, call guards, pick a result.

Nothing here parses, and a plain transition allocates nothing: :meth:`Decider.fast_process` is a
closure that answers a guard-free transition with two dictionary lookups (the state's row, then
its table of precomputed results) and hands every other case to the full path; guards are
evaluated by :mod:`pystator.fsm_core.guard_evaluation`. Business rejections (terminal state, trigger not allowed here, failed
context check, every guard said no) come back as a failed result; bad input (undefined state,
non-mapping context) and failures (a guard raising, a guard missing) raise :class:`FSMError`
subclasses. A transition with effects, branches or ``when`` entries is resolved against the
context (:mod:`pystator.fsm_core.plan`) before it is returned.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime
from types import MappingProxyType
from typing import Any, TypeAlias

from pystator.fsm_core.clock import Clock, utc_now
from pystator.fsm_core.compiler import MAX_CACHED_CONFIGURATIONS, Candidate, CompiledMachine, Row
from pystator.fsm_core.definition import TransitionSpec
from pystator.fsm_core.errors import (
    ContextValidationError,
    FSMError,
    GuardRejectedError,
    TerminalStateError,
    UndefinedStateError,
    UndefinedTriggerError,
)
from pystator.fsm_core.guard_evaluation import GuardEvaluator, GuardResolver
from pystator.fsm_core.results import TransitionResult

ProcessFn: TypeAlias = Callable[..., TransitionResult]

_EMPTY: Mapping[str, Any] = MappingProxyType({})


class Decider:
    """Computes transitions for one compiled machine, resolving named guards on demand."""

    __slots__ = (
        "_compiled",
        "_guards",
        "_lenient_events",
        "_normalize",
        "_rows",
        "clock",
        "fast_process",
    )

    def __init__(
        self, compiled: CompiledMachine, resolve: GuardResolver, clock: Clock = utc_now
    ) -> None:
        self._compiled = compiled
        self._rows = compiled.rows
        self.clock = clock
        meta = compiled.definition.meta
        self._guards = GuardEvaluator(resolve, lenient=not meta.strict_guard_registry)
        self._lenient_events = not meta.reject_invalid_events
        self._normalize = _normalizer(meta.event_normalizer)
        self.fast_process: ProcessFn = self._fast_closure()

    def _fast_closure(self) -> ProcessFn:
        """``process`` as a closure: a guard-free transition is two dictionary lookups."""
        rows = self._rows.get
        decide = self._decide
        full = self.process
        normalize = self._normalize

        def process(
            current_state: Any,
            trigger: Any,
            context: Any = None,
            now: datetime | None = None,
        ) -> TransitionResult:
            try:
                row = rows(current_state)
            except TypeError:  # unhashable: the full path explains
                row = None
            if row is None:  # a parallel configuration, or not a state at all
                return full(current_state, trigger, context, now)
            if normalize is not None:
                trigger = normalize(trigger)
            try:
                hit = row.fast.get(trigger)
            except TypeError:
                hit = None
            if hit is not None and (context is None or type(context) is dict):
                return hit
            return decide(row, trigger, context, now)

        return process

    def normalize(self, trigger: Any) -> Any:
        """``trigger`` as ``meta.event_normalizer`` spells it."""
        return trigger if self._normalize is None else self._normalize(trigger)

    def row(self, state: Any) -> Row:
        """The row of ``state``; :class:`UndefinedStateError` for anything unknown."""
        try:
            row = self._rows.get(state)
        except TypeError:  # unhashable
            raise UndefinedStateError(f"undefined state {state!r}") from None
        return row if row is not None else self._compiled.row(state)

    def process(
        self, state: Any, trigger: Any, context: Any, now: datetime | None = None
    ) -> TransitionResult:
        """The :class:`TransitionResult` of ``trigger`` in ``state`` (sync guards only)."""
        return self._decide(self.row(state), self.normalize(trigger), context, now)

    def _decide(
        self, row: Row, trigger: Any, context: Any, now: datetime | None
    ) -> TransitionResult:
        ctx, early = self._prepare(row, trigger, context)
        if early is not None:
            return early
        rejected: str | None = None
        selected: list[Candidate] = []
        for per_leaf in row.candidates[trigger]:
            for candidate in per_leaf:
                failed = self._guards.failing(candidate.guards, ctx)
                if failed is None and candidate.branches:
                    chosen, failed = self._guards.branch(candidate, ctx)
                    candidate = chosen if chosen is not None else candidate
                if failed is None:
                    selected.append(candidate)
                    break
                rejected = rejected or failed
        return self._finish(row, trigger, selected, rejected, ctx, now)

    async def aprocess(
        self, state: Any, trigger: Any, context: Any, now: datetime | None = None
    ) -> TransitionResult:
        """Like :meth:`process`, awaiting async guards."""
        trigger = self.normalize(trigger)
        row = self.row(state)
        ctx, early = self._prepare(row, trigger, context)
        if early is not None:
            return early
        rejected: str | None = None
        selected: list[Candidate] = []
        for per_leaf in row.candidates[trigger]:
            for candidate in per_leaf:
                failed = await self._guards.afailing(candidate.guards, ctx)
                if failed is None and candidate.branches:
                    chosen, failed = await self._guards.abranch(candidate, ctx)
                    candidate = chosen if chosen is not None else candidate
                if failed is None:
                    selected.append(candidate)
                    break
                rejected = rejected or failed
        return self._finish(row, trigger, selected, rejected, ctx, now)

    def forced(
        self, state: Any, trigger: str, context: Any, target: str, now: datetime | None = None
    ) -> TransitionResult:
        """The move of ``state`` to ``target`` regardless of transitions (a fallback state)."""
        row = self.row(state)
        ctx = _EMPTY if context is None else context
        result = self._compiled.forced(row.label, row.active, target, trigger)
        return self._resolved(result, ctx, now)

    def entry(self, trigger: str, context: Any, now: datetime | None = None) -> TransitionResult:
        """A new entity entering the initial configuration, carried out against ``context``
        like a transition's entry: the same plan, so ``when`` entries are decided and effects
        applied (``result.context``) in the order a transition into it would."""
        if context is None:
            context = _EMPTY
        elif not isinstance(context, Mapping):
            raise _bad_context(context)
        return self._resolved(self._compiled.entry(trigger), context, now)

    # steps ----------------------------------------------------------------------------------

    def _prepare(
        self, row: Row, trigger: Any, context: Any
    ) -> tuple[Mapping[str, Any], TransitionResult | None]:
        if context is None:
            context = _EMPTY
        elif type(context) is not dict and not isinstance(context, Mapping):
            raise _bad_context(context)
        error: FSMError
        if row.terminal:
            error = TerminalStateError(
                f"state {row.label!r} is terminal: no transition leaves it",
                current_state=row.label,
                trigger=_text(trigger),
            )
            return context, _rejected(row, trigger, error, {"reason": "terminal_state"})
        try:
            allowed = trigger in row.candidates
        except TypeError:
            allowed = False
        if not allowed:
            return context, self._not_allowed(row, trigger)
        if row.required_keys:
            missing = [k for k in row.required_keys if k not in context]
            if missing:
                error = ContextValidationError(
                    f"context is missing required key(s): {', '.join(missing)}",
                    errors=[f"missing key {k!r}" for k in missing],
                )
                metadata = {"reason": "context_validation", "missing": missing}
                return context, _rejected(row, trigger, error, metadata)
        if row.contract is not None:
            problems = row.contract(context)
            if problems:
                error = ContextValidationError(
                    f"context validation failed: {'; '.join(problems)}", errors=problems
                )
                metadata = {"reason": "context_validation", "errors": problems}
                return context, _rejected(row, trigger, error, metadata)
        return context, None

    def _not_allowed(self, row: Row, trigger: Any) -> TransitionResult:
        known = isinstance(trigger, str) and trigger in self._compiled.triggers
        if self._lenient_events and isinstance(trigger, str):
            return TransitionResult(
                success=True,
                source_state=row.label,
                target_state=row.label,
                trigger=trigger,
                metadata={"noop": True, "reason": "undefined_trigger"},
            )
        message = (
            f"trigger {trigger!r} is not allowed in state {row.label!r}"
            if known
            else f"machine {self._compiled.definition.meta.name!r} has no trigger {trigger!r}"
        )
        error = UndefinedTriggerError(message, current_state=row.label, trigger=_text(trigger))
        return _rejected(row, trigger, error, {"reason": "undefined_trigger"})

    def _finish(
        self,
        row: Row,
        trigger: str,
        selected: list[Candidate],
        rejected: str | None,
        ctx: Mapping[str, Any],
        now: datetime | None,
    ) -> TransitionResult:
        if not selected:
            error = GuardRejectedError(
                f"guard {rejected!r} rejected {trigger!r} in state {row.label!r}",
                guard_name=rejected,
                current_state=row.label,
                trigger=trigger,
            )
            metadata = {"reason": "guard_rejected", "guard_name": rejected}
            return _rejected(row, trigger, error, metadata)
        if len(selected) == 1 and selected[0].result is not None:
            result = selected[0].result
        else:
            result = self._combined(row, selected)
        plan = result.plan
        if plan is None:
            return result
        return plan.resolve(result, ctx, now, self.clock)

    def resolve_part(
        self, part: TransitionResult, context: Mapping[str, Any] | None
    ) -> TransitionResult:
        """One region's part of a combined result carried out against ``context`` (its own
        effects and conditional actions; the combined result did the same for the whole)."""
        return self._resolved(part, _EMPTY if context is None else context, None)

    def _resolved(
        self, result: TransitionResult, ctx: Mapping[str, Any], now: datetime | None
    ) -> TransitionResult:
        plan = result.plan
        if plan is None:
            return result
        return plan.resolve(result, ctx, now, self.clock)

    def _combined(self, row: Row, selected: list[Candidate]) -> TransitionResult:
        """One result for the transitions taken in several regions (conflicts: first wins)."""
        key = tuple(c.transition.index for c in selected)
        result = row.combined.get(key)
        if result is not None:
            return result
        compiled = self._compiled
        chosen: list[tuple[TransitionSpec, str]] = []
        leaving: set[str] = set()
        seen: set[int] = set()
        for candidate in selected:
            t = candidate.transition
            if t.index in seen:
                continue
            exits = compiled.exit_set(row.active, t, candidate.source)
            if exits & leaving:
                continue
            seen.add(t.index)
            leaving |= exits
            chosen.append((t, candidate.source))
        result = compiled.apply(row.label, row.active, chosen)
        if len(chosen) > 1:
            parts = tuple(compiled.apply(row.label, row.active, [pair]) for pair in chosen)
            result = replace(result, regions=parts)
        if len(row.combined) < MAX_CACHED_CONFIGURATIONS:
            row.combined[key] = result
        return result


def _normalizer(kind: str | None) -> Callable[[Any], Any] | None:
    if kind is None:
        return None
    if kind == "lower":
        return lambda t: t.lower() if isinstance(t, str) else t
    return lambda t: t.upper() if isinstance(t, str) else t


def _bad_context(context: Any) -> ContextValidationError:
    return ContextValidationError(
        f"context must be a mapping (dict), got {type(context).__name__}",
        errors=["context is not a mapping"],
    )


def _text(value: Any) -> str:
    return value if isinstance(value, str) else repr(value)


def _rejected(
    row: Row, trigger: Any, error: FSMError, metadata: dict[str, Any]
) -> TransitionResult:
    return TransitionResult(
        success=False,
        source_state=row.label,
        target_state=None,
        trigger=_text(trigger),
        error=error,
        metadata=metadata,
    )
