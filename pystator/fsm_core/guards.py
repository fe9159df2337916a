"""Named guards: pure predicates over the context that decide whether a transition may fire.

A guard is ``fn(context) -> bool`` or an ``async def`` returning ``bool``. Whether a guard is
asynchronous is decided once, at registration, so the engine never inspects it per event.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import Any, TypeAlias

GuardResult: TypeAlias = bool | Awaitable[bool]
GuardFn: TypeAlias = Callable[[Mapping[str, Any]], GuardResult]
_F = Callable[..., Any]


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

    __slots__ = ("_async", "_guards")

    def __init__(self) -> None:
        self._guards: dict[str, GuardFn] = {}
        self._async: dict[str, bool] = {}

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

    def __contains__(self, name: object) -> bool:
        return name in self._guards

    def __len__(self) -> int:
        return len(self._guards)

    def __iter__(self) -> Iterator[str]:
        return iter(tuple(self._guards))

    def __repr__(self) -> str:
        return f"GuardRegistry({list(self._guards)!r})"
