"""The scheduler protocol: durable (or in-process) timers for ``after:`` and ``timeout:``.

A scheduler is told to arm and cancel :class:`~pystator.fsm_core.records.ArmedTimer` values after
the state change that caused them has committed. When a timer is due, the scheduler calls the
``fire`` callback it was started with; the callback turns the timer into an ordinary event that
carries ``timer.ref`` so the step can drop it if the entity has left that state entry.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import Protocol, runtime_checkable

from pystator.fsm_core.clock import Clock, utc_now
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


#: Key prefix of timers armed by :meth:`ScheduleMethod.schedule` (not tied to a state entry).
SCHEDULED_BY_HAND = "schedule:"


def is_scheduled_by_hand(timer: ArmedTimer) -> bool:
    """True for a timer armed with ``scheduler.schedule(…)``: it fires whatever state the entity
    is in then (an ``after:`` timer fires only while its state entry holds)."""
    return timer.key.startswith(SCHEDULED_BY_HAND)


def scheduled_timer(
    entity_id: str,
    trigger: str,
    delay_ms: int,
    *,
    machine: str = "",
    key: str | None = None,
    now: datetime | None = None,
) -> ArmedTimer:
    """The timer ``schedule`` arms: ``trigger`` for ``entity_id`` in ``delay_ms`` milliseconds.

    ``key`` makes it replaceable/cancellable by name (arming the same key again replaces it);
    by default every call gets a fresh one.
    """
    if not isinstance(delay_ms, int) or isinstance(delay_ms, bool) or delay_ms < 0:
        raise ValueError(f"delay_ms must be a non-negative integer, got {delay_ms!r}")
    if not entity_id or not trigger:
        raise ValueError("schedule() needs an entity_id and a trigger")
    moment = now or utc_now()
    return ArmedTimer(
        machine=machine,
        entity_id=entity_id,
        key=SCHEDULED_BY_HAND + (key or uuid.uuid4().hex),
        state="",
        entry=0,
        trigger=trigger,
        due_at=moment + timedelta(milliseconds=delay_ms),
    )


class ScheduleMethod:
    """The documented ``scheduler.schedule(entity_id, trigger, delay_ms)`` over ``arm``.

    The timer fires into the callback the scheduler was started with (an Orchestrator's), as the
    event ``trigger`` for ``entity_id``. Give it a ``key`` to replace it by scheduling the same
    key again, or to cancel it with :meth:`unschedule`.
    """

    def arm(self, timers: Sequence[ArmedTimer]) -> None:  # pragma: no cover - the scheduler's
        raise NotImplementedError

    def cancel(self, timers: Sequence[ArmedTimer]) -> None:  # pragma: no cover - the scheduler's
        raise NotImplementedError

    def schedule(
        self,
        entity_id: str,
        trigger: str,
        delay_ms: int,
        *,
        machine: str = "",
        key: str | None = None,
    ) -> str:
        """Fire ``trigger`` for ``entity_id`` after ``delay_ms`` ms; returns the timer id."""
        clock: Clock = getattr(self, "_clock", None) or getattr(self, "clock", None) or utc_now
        timer = scheduled_timer(entity_id, trigger, delay_ms, machine=machine, key=key, now=clock())
        self.arm([timer])
        return timer.timer_id

    def unschedule(self, entity_id: str, key: str, *, machine: str = "") -> None:
        """Cancel the timer scheduled with ``key`` for ``entity_id`` (no error if it is gone)."""
        timer = scheduled_timer(entity_id, "unscheduled", 0, machine=machine, key=key)
        self.cancel([dataclasses.replace(timer, due_at=None)])
