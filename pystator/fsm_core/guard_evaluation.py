"""Guard evaluation: named guards (sync or async), compiled predicates and composite trees.

A named guard is resolved through the machine's registry each time (so guards registered after
binding count); a missing one raises :class:`GuardNotFoundError`, or passes when
``meta.strict_guard_registry`` is false. A guard that raises is a failure
(:class:`GuardEvaluationError`, cause kept), not a rejection.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from pystator.fsm_core.compiler import Candidate
from pystator.fsm_core.conditions import AllOf, AnyOf, Condition, Named, Not, Test
from pystator.fsm_core.definition import GuardSpec
from pystator.fsm_core.errors import FSMError, GuardEvaluationError, GuardNotFoundError

if TYPE_CHECKING:  # guards.py builds on this module (GuardRegistry.can_transition)
    from pystator.fsm_core.guards import GuardFn

#: Resolves a guard name to ``(function, is_async)``; None when no registry knows it.
GuardResolver = Callable[[str], "tuple[GuardFn, bool] | None"]


class GuardEvaluator:
    """Evaluates guard lists for one machine; returns the label of the first guard that fails."""

    __slots__ = ("_lenient", "_resolve")

    def __init__(self, resolve: GuardResolver, *, lenient: bool) -> None:
        self._resolve = resolve
        self._lenient = lenient

    def branch(
        self, candidate: Candidate, ctx: Mapping[str, Any]
    ) -> tuple[Candidate | None, str | None]:
        failed: str | None = None
        for branch in candidate.branches:
            failed = self.failing(branch.guards, ctx)
            if failed is None:
                return branch, None
        return None, failed or f"choice {candidate.transition.dest}"

    async def abranch(
        self, candidate: Candidate, ctx: Mapping[str, Any]
    ) -> tuple[Candidate | None, str | None]:
        failed: str | None = None
        for branch in candidate.branches:
            failed = await self.afailing(branch.guards, ctx)
            if failed is None:
                return branch, None
        return None, failed or f"choice {candidate.transition.dest}"

    def failing(self, guards: tuple[GuardSpec, ...], context: Mapping[str, Any]) -> str | None:
        for guard in guards:
            predicate = guard.predicate
            if predicate is not None:
                ok: Any = predicate(context)
            elif guard.name is not None:
                found = self._resolve(guard.name)
                if found is not None and not found[1] and not guard.params:
                    ok = _call_guard(found[0], guard.name, guard.params, context)
                    if inspect.isawaitable(ok):
                        _discard(ok)
                        raise GuardEvaluationError(
                            f"guard {guard.name!r} returned an awaitable: use aprocess() / asend()",
                            guard_name=guard.name,
                        )
                else:
                    ok = self._named(guard.name, guard.params, context)
            else:
                assert guard.condition is not None
                ok = self._test(guard.condition, context)
            if not ok:
                return guard.label
        return None

    def _named(self, name: str, params: Mapping[str, Any], context: Mapping[str, Any]) -> Any:
        found = self._guard(name)
        if found is None:
            return True  # meta.strict_guard_registry: false lets unregistered guards pass
        fn, is_async = found
        if is_async:
            raise GuardEvaluationError(
                f"guard {name!r} is async: use aprocess() / asend()", guard_name=name
            )
        ok = _call_guard(fn, name, params, context)
        if inspect.isawaitable(ok):
            _discard(ok)
            raise GuardEvaluationError(
                f"guard {name!r} returned an awaitable: use aprocess() / asend()", guard_name=name
            )
        return ok

    def _test(self, condition: Condition, context: Mapping[str, Any]) -> bool:
        if isinstance(condition, Test):
            return condition.predicate(context)
        if isinstance(condition, Named):
            return bool(self._named(condition.name, condition.params, context))
        if isinstance(condition, Not):
            return not self._test(condition.part, context)
        if isinstance(condition, AllOf):
            return all(self._test(p, context) for p in condition.parts)
        assert isinstance(condition, AnyOf)
        return any(self._test(p, context) for p in condition.parts)

    async def afailing(
        self, guards: tuple[GuardSpec, ...], context: Mapping[str, Any]
    ) -> str | None:
        for guard in guards:
            predicate = guard.predicate
            if predicate is not None:
                ok: Any = predicate(context)
            elif guard.name is not None:
                ok = await self._anamed(guard.name, guard.params, context)
            else:
                assert guard.condition is not None
                ok = await self._atest(guard.condition, context)
            if not ok:
                return guard.label
        return None

    async def _anamed(
        self, name: str, params: Mapping[str, Any], context: Mapping[str, Any]
    ) -> Any:
        found = self._guard(name)
        if found is None:
            return True
        ok = _call_guard(found[0], name, params, context)
        if inspect.isawaitable(ok):
            try:
                ok = await ok
            except FSMError:
                raise
            except Exception as exc:
                raise _guard_failed(name, exc) from exc
        return ok

    async def _atest(self, condition: Condition, context: Mapping[str, Any]) -> bool:
        if isinstance(condition, Test):
            return condition.predicate(context)
        if isinstance(condition, Named):
            return bool(await self._anamed(condition.name, condition.params, context))
        if isinstance(condition, Not):
            return not await self._atest(condition.part, context)
        if isinstance(condition, AllOf):
            for part in condition.parts:
                if not await self._atest(part, context):
                    return False
            return True
        assert isinstance(condition, AnyOf)
        for part in condition.parts:
            if await self._atest(part, context):
                return True
        return False

    def _guard(self, name: str) -> tuple[GuardFn, bool] | None:
        found = self._resolve(name)
        if found is None and not self._lenient:
            raise GuardNotFoundError(
                f"guard {name!r} is not registered (use @machine.guard or bind_guards)",
                guard_name=name,
            )
        return found


def _call_guard(
    fn: Callable[..., Any], name: str, params: Mapping[str, Any], context: Mapping[str, Any]
) -> Any:
    try:
        return fn(context, **params) if params else fn(context)
    except FSMError:
        raise
    except Exception as exc:
        raise _guard_failed(name, exc) from exc


def _guard_failed(name: str, exc: Exception) -> GuardEvaluationError:
    return GuardEvaluationError(
        f"guard {name!r} raised {type(exc).__name__}: {exc}", guard_name=name
    )


def _discard(awaitable: Any) -> None:
    close = getattr(awaitable, "close", None)
    if callable(close):
        close()
