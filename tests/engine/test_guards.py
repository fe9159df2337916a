"""GuardRegistry: registration, decorator, lookup, async detection."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import pytest

from pystator import GuardRegistry
from pystator.fsm_core.guards import is_async_callable


def test_register_get_contains_len_names() -> None:
    guards = GuardRegistry()

    def positive(ctx: Mapping[str, Any]) -> bool:
        return bool(ctx.get("qty", 0) > 0)

    assert guards.register("positive", positive) is positive
    guards.register("always", lambda ctx: True)
    assert guards.get("positive") is positive
    assert guards.get("missing") is None
    assert "positive" in guards and "missing" not in guards
    assert len(guards) == 2
    assert guards.names() == ("positive", "always")
    assert list(guards) == ["positive", "always"]
    assert guards.get("positive")({"qty": 3}) is True  # type: ignore[misc]


def test_decorator_uses_given_name_or_function_name() -> None:
    guards = GuardRegistry()

    @guards.decorator("is_full_fill")
    def full(ctx: Mapping[str, Any]) -> bool:
        return bool(ctx["fill_qty"] >= ctx["order_qty"])

    @guards.decorator()
    def other(ctx: Mapping[str, Any]) -> bool:
        return True

    assert full({"fill_qty": 2, "order_qty": 2}) is True  # decorator returns the function
    assert guards.names() == ("is_full_fill", "other")


def test_register_replaces_and_unregister_removes() -> None:
    guards = GuardRegistry()
    guards.register("g", lambda ctx: True)
    guards.register("g", lambda ctx: False)
    assert len(guards) == 1
    assert guards.get("g")({}) is False  # type: ignore[misc]
    guards.unregister("g")
    guards.unregister("g")
    assert "g" not in guards


@pytest.mark.parametrize("bad_name", ["", None, 3])
def test_register_refuses_bad_names(bad_name: Any) -> None:
    with pytest.raises(ValueError):
        GuardRegistry().register(bad_name, lambda ctx: True)


def test_register_refuses_non_callables() -> None:
    with pytest.raises(TypeError, match="must be callable"):
        GuardRegistry().register("g", True)  # type: ignore[arg-type]


async def _async_guard(ctx: Mapping[str, Any]) -> bool:
    return True


class _AsyncCallable:
    async def __call__(self, ctx: Mapping[str, Any]) -> bool:
        return True


class _SyncCallable:
    def __call__(self, ctx: Mapping[str, Any]) -> bool:
        return True


def test_is_async_detected_once_at_registration() -> None:
    guards = GuardRegistry()
    guards.register("sync", lambda ctx: True)
    guards.register("coro", _async_guard)
    guards.register("obj_async", _AsyncCallable())
    guards.register("obj_sync", _SyncCallable())
    guards.register("partial", functools.partial(_async_guard))
    assert not guards.is_async("sync")
    assert guards.is_async("coro")
    assert guards.is_async("obj_async")
    assert not guards.is_async("obj_sync")
    assert guards.is_async("partial")
    assert not guards.is_async("missing")


def test_is_async_callable_on_builtins() -> None:
    assert not is_async_callable(len)
    assert not is_async_callable(print)
