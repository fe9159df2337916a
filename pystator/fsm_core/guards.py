"""Named guards: pure predicates over the context that decide whether a transition may fire.

A guard is ``fn(context) -> bool`` or an ``async def`` returning ``bool``. Whether a guard is
asynchronous is decided once, at registration, so the engine never inspects it per event.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias

from pystator.fsm_core.errors import FSMError, GuardEvaluationError, GuardNotFoundError
from pystator.fsm_core.guard_evaluation import GuardEvaluator

if TYPE_CHECKING:
    from pystator.fsm_core.definition import TransitionSpec

GuardReturn: TypeAlias = bool | Awaitable[bool]
GuardFn: TypeAlias = Callable[[Mapping[str, Any]], GuardReturn]
_F = Callable[..., Any]


@dataclass(frozen=True, slots=True)
class GuardResult:
    """The outcome of evaluating guards by name: truthy when they passed.

    ``guard_name`` names the guard that decided (the failing one, or the last one evaluated);
    ``message`` says why it failed; ``error`` is set when the guard raised or was missing.
    """

    passed: bool
    guard_name: str | None = None
    message: str | None = None
    error: FSMError | None = None

    def __bool__(self) -> bool:
        return self.passed


def is_async_callable(fn: Callable[..., Any]) -> bool:
    """True when calling ``fn`` returns an awaitable (coroutine functions, async ``__call__``)."""
    while isinstance(fn, functools.partial):
        fn = fn.func
    if inspect.iscoroutinefunction(fn):
        return True
    call = getattr(fn, "__call__", None)  # noqa: B004 - callable objects with async __call__
    return call is not None and not inspect.isfunction(fn) and inspect.iscoroutinefunction(call)


class GuardRegistry:
    """A name → guard function table, shared by machines through ``bind_guards``."""

    __slots__ = ("_async", "_guards", "strict")

    def __init__(self, strict: bool = True) -> None:
        """``strict=False``: a guard name nobody registered passes (in :meth:`evaluate`,
        :meth:`can_transition` and in every machine bound to this registry) instead of raising
        :class:`GuardNotFoundError` — pass-through guards for configs you only want to walk."""
        self._guards: dict[str, GuardFn] = {}
        self._async: dict[str, bool] = {}
        self.strict = strict

    def register(self, name: str, fn: GuardFn) -> GuardFn:
        """Register ``fn`` under ``name`` (replacing any previous guard of that name)."""
        if not isinstance(name, str) or not name:
            raise ValueError("a guard name must be a non-empty string")
        if not callable(fn):
            raise TypeError(f"guard {name!r} must be callable, got {type(fn).__name__}")
        self._guards[name] = fn
        self._async[name] = is_async_callable(fn)
        return fn

    def decorator(self, name: str | None = None) -> Callable[[_F], _F]:
        """Decorator form: ``@guards.decorator("name")`` (default: the function's name)."""

        def wrap(fn: _F) -> _F:
            self.register(name or fn.__name__, fn)
            return fn

        return wrap

    def unregister(self, name: str) -> None:
        """Remove the guard called ``name`` (no error if it is absent)."""
        self._guards.pop(name, None)
        self._async.pop(name, None)

    def get(self, name: str) -> GuardFn | None:
        """The guard called ``name``, or ``None``."""
        return self._guards.get(name)

    def is_async(self, name: str) -> bool:
        """Whether the guard called ``name`` returns an awaitable (False if it is absent)."""
        return self._async.get(name, False)

    def names(self) -> tuple[str, ...]:
        """Registered guard names, in registration order."""
        return tuple(self._guards)

    def has(self, name: str) -> bool:
        """True when a guard called ``name`` is registered."""
        return name in self._guards

    # evaluation (the documented transition-level API) ----------------------------------------

    def evaluate(self, name: str, context: Mapping[str, Any], **params: Any) -> GuardResult:
        """Evaluate the guard ``name`` against ``context``.

        A missing guard raises :class:`GuardNotFoundError` (or passes when not ``strict``); a
        guard that raises gives a failed result carrying :class:`GuardEvaluationError`.
        """
        fn = self._guards.get(name)
        if fn is None:
            return self._missing(name)
        if self._async[name]:
            raise GuardEvaluationError(
                f"guard {name!r} is async: use async_evaluate()", guard_name=name
            )
        try:
            ok = fn(context, **params) if params else fn(context)
        except Exception as exc:  # a raising guard is a failure, reported in the result
            return _raised(name, exc)
        return _verdict(name, ok)

    async def async_evaluate(
        self, name: str, context: Mapping[str, Any], **params: Any
    ) -> GuardResult:
        """Like :meth:`evaluate`, awaiting an async guard."""
        fn = self._guards.get(name)
        if fn is None:
            return self._missing(name)
        try:
            ok: Any = fn(context, **params) if params else fn(context)
            if inspect.isawaitable(ok):
                ok = await ok
        except Exception as exc:  # a raising guard is a failure, reported in the result
            return _raised(name, exc)
        return _verdict(name, ok)

    def evaluate_all(self, names: Iterable[str], context: Mapping[str, Any]) -> GuardResult:
        """Evaluate ``names`` in order; the first failing guard's result, else a pass."""
        last: str | None = None
        for name in names:
            result = self.evaluate(name, context)
            if not result:
                return result
            last = name
        return GuardResult(True, last)

    async def async_evaluate_all(
        self, names: Iterable[str], context: Mapping[str, Any]
    ) -> GuardResult:
        """Like :meth:`evaluate_all`, awaiting async guards."""
        last: str | None = None
        for name in names:
            result = await self.async_evaluate(name, context)
            if not result:
                return result
            last = name
        return GuardResult(True, last)

    def can_transition(self, transition: TransitionSpec, context: Mapping[str, Any]) -> bool:
        """True when every guard of ``transition`` (named, ``expr``, ``check``, composites)
        holds for ``context``, named guards resolved in this registry."""
        return self._evaluator().failing(transition.guards, context) is None

    async def async_can_transition(
        self, transition: TransitionSpec, context: Mapping[str, Any]
    ) -> bool:
        """Like :meth:`can_transition`, awaiting async guards."""
        return await self._evaluator().afailing(transition.guards, context) is None

    def _evaluator(self) -> GuardEvaluator:
        return GuardEvaluator(self.resolve, lenient=not self.strict)

    def resolve(self, name: str) -> tuple[GuardFn, bool] | None:
        """``(function, is_async)`` of ``name``; a pass-through guard when not ``strict``."""
        fn = self._guards.get(name)
        if fn is not None:
            return fn, self._async[name]
        return None if self.strict else (_pass_through, False)

    def _missing(self, name: str) -> GuardResult:
        if self.strict:
            raise GuardNotFoundError(f"guard {name!r} is not registered", guard_name=name)
        return GuardResult(True, name, "not registered (non-strict registry: passes)")

    def __contains__(self, name: object) -> bool:
        return name in self._guards

    def __len__(self) -> int:
        return len(self._guards)

    def __iter__(self) -> Iterator[str]:
        return iter(tuple(self._guards))

    def __repr__(self) -> str:
        return f"GuardRegistry({list(self._guards)!r})"


def _pass_through(context: Mapping[str, Any]) -> bool:
    return True


def _verdict(name: str, ok: Any) -> GuardResult:
    if ok:
        return GuardResult(True, name)
    return GuardResult(False, name, f"guard {name!r} returned {ok!r}")


def _raised(name: str, exc: Exception) -> GuardResult:
    if isinstance(exc, FSMError):
        error: FSMError = exc
    else:
        error = GuardEvaluationError(
            f"guard {name!r} raised {type(exc).__name__}: {exc}", guard_name=name
        )
        error.__cause__ = exc
    return GuardResult(False, name, str(error), error)
