"""An asyncio event loop whose clock skips ahead: ``asyncio.sleep`` and ``call_later`` cost no real
time, so a test of timers runs at once and sees the same order of events.

When the loop has nothing ready and no I/O has arrived, it moves its clock to the next scheduled
callback instead of blocking. I/O and callbacks from other threads still wake it as usual; the
loop is only for code whose waiting is on timers (a thread still working while the loop skips
ahead would see time pass faster than it does).
"""

from __future__ import annotations

import asyncio
import selectors
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

T = TypeVar("T")


class _SkippingSelector(selectors.DefaultSelector):
    """Looks for I/O without blocking; where the loop would have waited, it moves the clock."""

    def __init__(self, loop_clock: list[float]) -> None:
        super().__init__()
        self._clock = loop_clock

    def select(self, timeout: float | None = None) -> list[tuple[Any, int]]:
        if timeout is None:  # nothing scheduled: only I/O or another thread can wake the loop
            return super().select(None)
        events = super().select(0)
        if not events and timeout > 0:
            self._clock[0] += timeout
        return events


class TimeSkippingLoop(asyncio.SelectorEventLoop):
    """A selector event loop on a virtual clock (starting at 0) that skips idle time."""

    def __init__(self) -> None:
        self._virtual = [0.0]
        super().__init__(_SkippingSelector(self._virtual))

    def time(self) -> float:
        """The virtual clock, in seconds."""
        return self._virtual[0]


class TimeSkippingPolicy(asyncio.DefaultEventLoopPolicy):
    """Every new event loop (``asyncio.run`` included) is a :class:`TimeSkippingLoop`."""

    def new_event_loop(self) -> asyncio.AbstractEventLoop:
        return TimeSkippingLoop()


@contextmanager
def skipping_time() -> Iterator[None]:
    """Within the block, ``asyncio.run`` (even in code under test) runs on skipping loops."""
    asyncio.set_event_loop_policy(TimeSkippingPolicy())
    try:
        yield
    finally:
        asyncio.set_event_loop_policy(None)


def run_skipping_time(coro: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(coro)`` on a :class:`TimeSkippingLoop`."""
    with asyncio.Runner(loop_factory=TimeSkippingLoop) as runner:
        return runner.run(coro)


async def advance(seconds: float) -> None:
    """On a :class:`TimeSkippingLoop`: let ``seconds`` of virtual time pass (every timer due by
    then fires, in order), at once in real time."""
    loop = asyncio.get_running_loop()
    assert isinstance(loop, TimeSkippingLoop), "advance() moves a virtual clock only"
    await asyncio.sleep(seconds)
