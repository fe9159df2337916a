"""In-process timers on asyncio: for development, tests and single-process deployments.

Timers live in memory and are lost when the process exits (use the Redis or Celery scheduler
to survive restarts). Where a timer waits depends on where :meth:`AsyncioScheduler.arm` is
called:

- **inside a running event loop** (``await orchestrator.async_process_event(...)``): on that
  loop, with :meth:`~asyncio.loop.call_later`. Such timers fire only while that loop runs.
- **with no running loop** (``orchestrator.process_event(...)`` from plain code): on a private
  event loop in a daemon thread, started on the first such call and stopped by
  :meth:`AsyncioScheduler.aclose`. The ``fire`` callback then runs in that thread.

A due timer is fired in its own task: the callback is called and, if it returns an awaitable,
awaited. A callback that raises is logged with its traceback and retried after a capped
exponential backoff (:func:`~pystator.fsm_core.backoff.backoff_ceiling`), until it succeeds, the timer is cancelled or
re-armed, ``max_attempts`` is reached, or the scheduler closes. Cancelling a timer whose callback
is running does not interrupt the callback; it only prevents a retry.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass

from pystator.fsm_core.backoff import backoff_ceiling
from pystator.fsm_core.clock import Clock, utc_now
from pystator.fsm_core.errors import SchedulerError
from pystator.fsm_core.records import ArmedTimer
from pystator.schedulers.background_loop import BackgroundLoop
from pystator.schedulers.base import FireCallback, ScheduleMethod

DEFAULT_RETRY_BASE_SECONDS = 0.5
DEFAULT_RETRY_MAX_SECONDS = 30.0
BACKGROUND_THREAD_NAME = "pystator-asyncio-timers"

LOGGER = logging.getLogger("pystator.schedulers.asyncio")


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


@dataclass(eq=False, slots=True)
class _Entry:
    """One armed timer and where it waits; identity tells a current entry from a replaced one."""

    timer: ArmedTimer
    loop: asyncio.AbstractEventLoop
    handle: asyncio.TimerHandle | None = None
    failures: int = 0


class AsyncioScheduler(ScheduleMethod):
    """A :class:`~pystator.schedulers.base.Scheduler` keeping timers in this process.

    ``clock`` gives the current aware UTC time (a timer waits ``due_at - clock()``; a timer
    already due fires at once). ``retry_base``/``retry_max`` shape the backoff after a failing
    ``fire``; ``max_attempts`` (None: no limit) bounds how often one timer is fired before it is
    dropped with an error log.
    """

    def __init__(
        self,
        *,
        clock: Clock = utc_now,
        retry_base: float = DEFAULT_RETRY_BASE_SECONDS,
        retry_max: float = DEFAULT_RETRY_MAX_SECONDS,
        max_attempts: int | None = None,
    ) -> None:
        if (
            retry_base < 0
            or retry_max < retry_base
            or (max_attempts is not None and max_attempts < 1)
        ):
            raise SchedulerError(
                "AsyncioScheduler needs 0 <= retry_base <= retry_max and max_attempts >= 1"
            )
        self._clock = clock
        self._retry_base = retry_base
        self._retry_max = retry_max
        self._max_attempts = max_attempts
        self._lock = threading.Lock()
        self._entries: dict[str, _Entry] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._fire: FireCallback | None = None
        self._background: BackgroundLoop | None = None
        self._closed = False

    # --- the Scheduler protocol ----------------------------------------------------------------

    def start(self, fire: FireCallback) -> None:
        """Deliver due timers to ``fire`` (idempotent for the same callback).

        One scheduler serves one callback: a second, different callback would receive the first
        one's timers, so it is refused.
        """
        with self._lock:
            self._check_open()
            if self._fire is not None and self._fire != fire:
                raise SchedulerError(
                    "AsyncioScheduler was already started with another fire callback; "
                    "give each Orchestrator its own scheduler"
                )
            self._fire = fire

    def arm(self, timers: Sequence[ArmedTimer]) -> None:
        """Arm timers; arming an id already armed replaces that timer (one per ``timer_id``)."""
        for timer in timers:
            _check_due(timer)
        if not timers:
            return
        loop = _running_loop()
        with self._lock:
            self._check_open()
            if self._fire is None:
                raise SchedulerError("AsyncioScheduler.start(fire) must be called before arm()")
            if loop is None:
                loop = self._background_loop()
            entries = [_Entry(timer=timer, loop=loop) for timer in timers]
            replaced = [self._swap(entry) for entry in entries]
        for old in replaced:
            if old is not None:
                _drop_handle(old)
        if loop is _running_loop():
            self._schedule(entries)
        else:
            loop.call_soon_threadsafe(self._schedule, entries)

    def cancel(self, timers: Sequence[ArmedTimer]) -> None:
        """Cancel timers by ``timer_id`` (unknown or already fired ids are ignored)."""
        with self._lock:
            removed = [self._entries.pop(t.timer_id, None) for t in timers]
        for entry in removed:
            if entry is not None:
                _drop_handle(entry)

    async def aclose(self) -> None:
        """Cancel every timer and running callback, stop the background thread (idempotent)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            entries = list(self._entries.values())
            self._entries.clear()
            tasks = list(self._tasks)
            background, self._background = self._background, None
        for entry in entries:
            _drop_handle(entry)
        await _cancel_tasks(tasks)
        if background is not None:
            if threading.current_thread() is background.thread:
                background.stop()
            else:
                await asyncio.to_thread(background.stop)

    # --- for tests and operators ---------------------------------------------------------------

    def pending(self) -> int:
        """How many timers are armed (waiting, firing, or waiting to retry)."""
        with self._lock:
            return len(self._entries)

    def pending_ids(self) -> list[str]:
        """The ids of the armed timers, sorted."""
        with self._lock:
            return sorted(self._entries)

    @property
    def closed(self) -> bool:
        """True once :meth:`aclose` has been called."""
        return self._closed

    # --- internals (the methods below run on the entry's loop, unless noted) -----------------

    def _check_open(self) -> None:
        if self._closed:
            raise SchedulerError("AsyncioScheduler is closed")

    def _background_loop(self) -> asyncio.AbstractEventLoop:
        """The private loop for arms without a running loop (caller holds the lock)."""
        if self._background is None:
            self._background = BackgroundLoop(BACKGROUND_THREAD_NAME)
        return self._background.loop

    def _swap(self, entry: _Entry) -> _Entry | None:
        """Make ``entry`` the current one for its id (caller holds the lock)."""
        old = self._entries.get(entry.timer.timer_id)
        self._entries[entry.timer.timer_id] = entry
        return old

    def _is_current(self, entry: _Entry) -> bool:
        return self._entries.get(entry.timer.timer_id) is entry

    def _schedule(self, entries: list[_Entry]) -> None:
        now = self._clock()
        for entry in entries:
            due_at = entry.timer.due_at or now  # arm() refuses timers without due_at
            self._wait(entry, max(0.0, (due_at - now).total_seconds()))

    def _wait(self, entry: _Entry, delay: float) -> None:
        with self._lock:
            if self._is_current(entry):
                entry.handle = entry.loop.call_later(delay, self._due, entry)

    def _due(self, entry: _Entry) -> None:
        with self._lock:
            if not self._is_current(entry):
                return
            entry.handle = None
            task = entry.loop.create_task(self._fire_entry(entry))
            self._tasks.add(task)
        task.add_done_callback(self._forget_task)

    def _forget_task(self, task: asyncio.Task[None]) -> None:
        with self._lock:
            self._tasks.discard(task)

    async def _fire_entry(self, entry: _Entry) -> None:
        fire = self._fire
        assert fire is not None  # arm() refuses timers before start()
        try:
            result = fire(entry.timer)
            if inspect.isawaitable(result):
                await result
        except Exception:  # logged with its traceback; the timer is retried, not lost
            self._failed(entry)
            return
        with self._lock:
            if self._is_current(entry):
                del self._entries[entry.timer.timer_id]

    def _failed(self, entry: _Entry) -> None:
        entry.failures += 1
        timer_id = entry.timer.timer_id
        if self._max_attempts is not None and entry.failures >= self._max_attempts:
            LOGGER.exception(
                "timer %s: fire callback failed %d time(s); giving up", timer_id, entry.failures
            )
            with self._lock:
                if self._is_current(entry):
                    del self._entries[timer_id]
            return
        delay = backoff_ceiling(
            entry.failures, base_seconds=self._retry_base, max_seconds=self._retry_max
        )
        LOGGER.exception(
            "timer %s: fire callback failed (attempt %d); retrying in %.3fs",
            timer_id,
            entry.failures,
            delay,
        )
        self._wait(entry, delay)


def _check_due(timer: ArmedTimer) -> None:
    if timer.due_at is None:
        raise SchedulerError(f"timer {timer.timer_id!r} has no due_at and cannot be armed")
    if timer.due_at.tzinfo is None:
        raise SchedulerError(f"timer {timer.timer_id!r}: naive due_at; timers need aware times")


def _drop_handle(entry: _Entry) -> None:
    """Cancel the entry's waiting handle, from any thread (a firing callback is left alone)."""
    handle, loop = entry.handle, entry.loop
    if handle is None or loop.is_closed():
        return  # firing, not yet scheduled (it will see it is no longer current), or loop gone
    if loop is _running_loop():
        handle.cancel()
        return
    try:
        loop.call_soon_threadsafe(handle.cancel)
    except RuntimeError:  # the loop closed meanwhile; its handles went with it
        LOGGER.debug("timer %s: its event loop is closed", entry.timer.timer_id)


async def _cancel_tasks(tasks: list[asyncio.Task[None]]) -> None:
    """Cancel firing tasks; wait for those of the running loop (other loops are only told)."""
    loop, me = asyncio.get_running_loop(), asyncio.current_task()
    local = [t for t in tasks if t.get_loop() is loop and t is not me]
    for task in tasks:
        if task in local:
            task.cancel()
        elif task is not me and not task.get_loop().is_closed():
            try:
                task.get_loop().call_soon_threadsafe(task.cancel)
            except RuntimeError:  # that loop closed meanwhile, and cancelled its tasks
                LOGGER.debug("timer task %s: its event loop is closed", task.get_name())
    if local:
        await asyncio.gather(*local, return_exceptions=True)


__all__ = [
    "DEFAULT_RETRY_BASE_SECONDS",
    "DEFAULT_RETRY_MAX_SECONDS",
    "AsyncioScheduler",
    "utc_now",
]
