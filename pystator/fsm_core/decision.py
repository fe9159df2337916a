"""``process``: look the configuration's row up, check the context, call guards, pick a result.

Nothing here parses or allocates a result for a plain transition: the row holds the
precomputed :class:`TransitionResult`. Business rejections (terminal state, trigger not
allowed here, failed context check, every guard said no) come back as a failed result; bad
input (undefined state, non-mapping context) and failures (a guard raising, a guard missing)
raise :class:`FSMError` subclasses.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from pystator.fsm_core.compiler import MAX_CACHED_CONFIGURATIONS, Candidate, CompiledMachine, Row
from pystator.fsm_core.definition import GuardSpec, TransitionSpec
from pystator.fsm_core.errors import (
    ContextValidationError,
    FSMError,
    GuardEvaluationError,
    GuardNotFoundError,
    GuardRejectedError,
    TerminalStateError,
    UndefinedStateError,
    UndefinedTriggerError,
)
from pystator.fsm_core.guards import GuardFn
from pystator.fsm_core.results import TransitionResult

#: Resolves a guard name to ``(function, is_async)``; None when no registry knows it.
GuardResolver = Callable[[str], "tuple[GuardFn, bool] | None"]

_EMPTY: Mapping[str, Any] = MappingProxyType({})


class Decider:
    """Computes transitions for one compiled machine, resolving named guards on demand."""

    __slots__ = ("_compiled", "_resolve", "_rows")

    def __init__(self, compiled: CompiledMachine, resolve: GuardResolver) -> None:
        self._compiled = compiled
        self._rows = compiled.rows
        self._resolve = resolve

    def row(self, state: Any) -> Row:
        """The row of ``state``; :class:`UndefinedStateError` for anything unknown."""
        try:
            row = self._rows.get(state)
        except TypeError:  # unhashable
            raise UndefinedStateError(f"undefined state {state!r}") from None
        return row if row is not None else self._compiled.row(state)

    def process(self, state: Any, trigger: Any, context: Any) -> TransitionResult:
        """The :class:`TransitionResult` of ``trigger`` in ``state`` (sync guards only)."""
        row = self.row(state)
        try:
            fast = row.fast.get(trigger)
        except TypeError:
            fast = None
        if fast is not None:
            if context is not None and not isinstance(context, Mapping):
                raise _bad_context(context)
            return fast
        ctx, early = self._prepare(row, trigger, context)
        if early is not None:
            return early
        rejected: str | None = None
        selected: list[Candidate] = []
        for per_leaf in row.candidates[trigger]:
            for candidate in per_leaf:
                failed = self._failing_guard(candidate.guards, ctx)
                if failed is None:
                    selected.append(candidate)
                    break
                rejected = rejected or failed
        return self._finish(row, trigger, selected, rejected)

    async def aprocess(self, state: Any, trigger: Any, context: Any) -> TransitionResult:
        """Like :meth:`process`, awaiting async guards."""
        row = self.row(state)
        ctx, early = self._prepare(row, trigger, context)
        if early is not None:
            return early
        rejected: str | None = None
        selected: list[Candidate] = []
        for per_leaf in row.candidates[trigger]:
            for candidate in per_leaf:
                failed = await self._afailing_guard(candidate.guards, ctx)
                if failed is None:
                    selected.append(candidate)
                    break
                rejected = rejected or failed
        return self._finish(row, trigger, selected, rejected)

    # steps ----------------------------------------------------------------------------------

    def _prepare(
        self, row: Row, trigger: Any, context: Any
    ) -> tuple[Mapping[str, Any], TransitionResult | None]:
        if context is None:
            context = _EMPTY
        elif not isinstance(context, Mapping):
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
            known = isinstance(trigger, str) and trigger in self._compiled.triggers
            message = (
                f"trigger {trigger!r} is not allowed in state {row.label!r}"
                if known
                else f"machine {self._compiled.definition.meta.name!r} has no trigger {trigger!r}"
            )
            error = UndefinedTriggerError(message, current_state=row.label, trigger=_text(trigger))
            return context, _rejected(row, trigger, error, {"reason": "undefined_trigger"})
        if row.required_keys:
            missing = [k for k in row.required_keys if k not in context]
            if missing:
                error = ContextValidationError(
                    f"context is missing required key(s): {', '.join(missing)}",
                    errors=[f"missing key {k!r}" for k in missing],
                )
                metadata = {"reason": "context_validation", "missing": missing}
                return context, _rejected(row, trigger, error, metadata)
        return context, None

    def _finish(
        self, row: Row, trigger: str, selected: list[Candidate], rejected: str | None
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
            return selected[0].result
        return self._combined(row, selected)

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
        if len(row.combined) < MAX_CACHED_CONFIGURATIONS:
            row.combined[key] = result
        return result

    # guards ---------------------------------------------------------------------------------

    def _failing_guard(
        self, guards: tuple[GuardSpec, ...], context: Mapping[str, Any]
    ) -> str | None:
        for guard in guards:
            expression = guard.expression
            if expression is not None:
                ok = expression.evaluate(context)
            else:
                fn, is_async = self._guard(guard)
                if is_async:
                    raise GuardEvaluationError(
                        f"guard {guard.name!r} is async: use aprocess() / asend()",
                        guard_name=guard.name,
                    )
                ok = _call_guard(fn, guard, context)
                if inspect.isawaitable(ok):
                    _discard(ok)
                    raise GuardEvaluationError(
                        f"guard {guard.name!r} returned an awaitable: use aprocess() / asend()",
                        guard_name=guard.name,
                    )
            if not ok:
                return guard.label
        return None

    async def _afailing_guard(
        self, guards: tuple[GuardSpec, ...], context: Mapping[str, Any]
    ) -> str | None:
        for guard in guards:
            expression = guard.expression
            if expression is not None:
                ok = expression.evaluate(context)
            else:
                fn, _ = self._guard(guard)
                ok = _call_guard(fn, guard, context)
                if inspect.isawaitable(ok):
                    try:
                        ok = await ok
                    except FSMError:
                        raise
                    except Exception as exc:
                        raise _guard_failed(guard, exc) from exc
            if not ok:
                return guard.label
        return None

    def _guard(self, guard: GuardSpec) -> tuple[GuardFn, bool]:
        name = guard.name or ""
        found = self._resolve(name)
        if found is None:
            raise GuardNotFoundError(
                f"guard {name!r} is not registered (use @machine.guard or bind_guards)",
                guard_name=name,
            )
        return found


def _call_guard(fn: GuardFn, guard: GuardSpec, context: Mapping[str, Any]) -> Any:
    try:
        return fn(context)
    except FSMError:
        raise
    except Exception as exc:
        raise _guard_failed(guard, exc) from exc


def _guard_failed(guard: GuardSpec, exc: Exception) -> GuardEvaluationError:
    return GuardEvaluationError(
        f"guard {guard.label!r} raised {type(exc).__name__}: {exc}", guard_name=guard.label
    )


def _discard(awaitable: Any) -> None:
    close = getattr(awaitable, "close", None)
    if callable(close):
        close()


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
