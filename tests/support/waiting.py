"""Waiting in tests: on a condition, with a deadline, never a fixed sleep.

A test that expects something to happen polls for it (:func:`wait_until`, :func:`until` on an
event loop) and fails when the deadline passes; the poll interval only bounds how late it
notices. A test that expects something *not* to happen first waits for a positive signal that
the thing would have happened by then (the work that would cause it has been done, the thread
that would do it is blocked where it should be: :func:`wait_until_blocked`), never for a while.
"""

from __future__ import annotations

import asyncio
import inspect
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

#: How long a wait may take by default before the test fails (generous: CI machines are shared).
DEFAULT_TIMEOUT_SECONDS = 60.0
#: How often a condition is looked at.
POLL_INTERVAL_SECONDS = 0.05


def wait_until(
    predicate: Callable[[], bool],
    *,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
    interval: float = POLL_INTERVAL_SECONDS,
    message: str = "condition",
) -> None:
    """Poll ``predicate`` until it is true; raise ``TimeoutError`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{message} not reached within {timeout:.0f}s")
        time.sleep(interval)


async def until(
    predicate: Callable[[], bool],
    *,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
    interval: float = POLL_INTERVAL_SECONDS,
    message: str = "condition",
) -> None:
    """:func:`wait_until` on the running event loop (other tasks run while it waits); the
    deadline is on the loop's clock."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise TimeoutError(f"{message} not reached within {timeout:.0f}s")
        await asyncio.sleep(interval)


def _line_of(function: Callable[..., Any], text: str) -> int:
    """The line number of the first line of ``function``'s source containing ``text``."""
    lines, first = inspect.getsourcelines(function)
    for offset, line in enumerate(lines):
        if text in line:
            return first + offset
    raise ValueError(f"{text!r} is not in {function.__qualname__}")


def wait_until_blocked(
    thread: threading.Thread,
    function: Callable[..., Any],
    at: str,
    *,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
) -> None:
    """Wait until ``thread`` is inside ``function`` on its source line containing ``at`` (a
    blocking call, such as a lock acquisition): the positive signal before asserting that the
    thread has not finished. Fails if the thread ends first."""
    code = getattr(function, "__code__", None)
    assert code is not None, f"{function!r} is not a Python function"
    line = _line_of(function, at)

    def blocked() -> bool:
        assert thread.is_alive(), f"{thread.name} finished instead of blocking in {code.co_name}"
        frame = sys._current_frames().get(thread.ident or -1)
        return frame is not None and frame.f_code is code and frame.f_lineno == line

    wait_until(blocked, timeout=timeout, interval=0.005, message=f"{thread.name} blocked")
