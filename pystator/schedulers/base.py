"""The scheduler protocol: durable (or in-process) timers for ``after:`` and ``timeout:``.

A scheduler is told to arm and cancel :class:`~pystator.fsm_core.records.ArmedTimer` values after
the state change that caused them has committed. When a timer is due, the scheduler calls the
``fire`` callback it was started with; the callback turns the timer into an ordinary event that
carries ``timer.ref`` so the step can drop it if the entity has left that state entry.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol, runtime_checkable

from pystator.fsm_core.records import ArmedTimer

#: Called with a due timer. May be sync or async; an exception leaves the timer to be retried.
FireCallback = Callable[[ArmedTimer], Awaitable[None] | None]


@runtime_checkable
class Scheduler(Protocol):
    """What the Orchestrator and the worker need from a timer backend."""

    def start(self, fire: FireCallback) -> None:
        """Begin delivering due timers to ``fire`` (idempotent)."""

    def arm(self, timers: Sequence[ArmedTimer]) -> None:
        """Arm timers (idempotent per ``timer_id``)."""

    def cancel(self, timers: Sequence[ArmedTimer]) -> None:
        """Cancel timers (unknown or already fired ids are ignored)."""

    async def aclose(self) -> None:
        """Stop delivering timers and release resources."""
