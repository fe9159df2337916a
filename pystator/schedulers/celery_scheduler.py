"""Timers as Celery ETA tasks, for the Orchestrator run inside Celery workers.

``arm`` publishes one ``pystator.scheduler.fire`` task per timer with ``eta`` set to its due time,
but never more than ``horizon_seconds`` ahead: a longer delay travels in hops (the task, run
early, publishes itself again for the next stretch). So no worker holds a message for hours —
which would pin it in worker memory and outlive a Redis broker's visibility timeout or
RabbitMQ's consumer timeout, causing redelivery storms.

When the task runs at the due time it calls the ``fire`` callback that this process's
Orchestrator registered under the scheduler's ``name`` (so the Celery worker process must build
the Orchestrator too, as the README's Celery recipe does). A redelivered or duplicated timer is
harmless: the Orchestrator applies a timer only if the entity is still in the state entry that
armed it, and records it stale otherwise. For the same reason ``cancel`` needs no broker call —
leaving the state is what makes the timer stale. With ``task_acks_late`` (the fleet app's
default) a worker killed while holding a timer has it redelivered.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import threading
import weakref
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from pystator.fsm_core.backoff import backoff_ceiling
from pystator.fsm_core.clock import Clock, utc_now
from pystator.fsm_core.errors import SchedulerError
from pystator.fsm_core.records import ArmedTimer
from pystator.schedulers.base import FireCallback, ScheduleMethod
from pystator.schedulers.payload import decode_timer, encode_timer

if TYPE_CHECKING:
    from celery import Celery, Task

FIRE_TASK = "pystator.scheduler.fire"
DEFAULT_NAME = "default"
DEFAULT_HORIZON_SECONDS = 300.0
#: A task run this close to its due time fires instead of hopping again.
EARLY_TOLERANCE = timedelta(milliseconds=20)
RETRY_BASE_SECONDS = 1.0
RETRY_MAX_SECONDS = 60.0

LOGGER = logging.getLogger("pystator.schedulers.celery")


_callbacks: dict[str, FireCallback] = {}
_callbacks_lock = threading.Lock()
_apps_with_task: weakref.WeakSet[Celery] = weakref.WeakSet()


class CeleryScheduler(ScheduleMethod):
    """A :class:`~pystator.schedulers.base.Scheduler` publishing timers as Celery ETA tasks.

    ``app`` is the Celery app whose workers run the timers (the task is registered on it);
    ``queue`` the queue to publish on (default: the app's default queue); ``name`` tells this
    scheduler's timers from another Orchestrator's in the same worker processes.
    """

    def __init__(
        self,
        app: Celery,
        *,
        name: str = DEFAULT_NAME,
        queue: str | None = None,
        horizon_seconds: float = DEFAULT_HORIZON_SECONDS,
        clock: Clock = utc_now,
    ) -> None:
        if horizon_seconds <= 0:
            raise SchedulerError("CeleryScheduler needs horizon_seconds > 0")
        if not name:
            raise SchedulerError("CeleryScheduler needs a non-empty name")
        self.app = app
        self.name = name
        self.queue = queue
        self.horizon = timedelta(seconds=horizon_seconds)
        self.clock = clock
        self._fire: FireCallback | None = None
        register_task(app)

    def register_task(self) -> None:
        """Register the ``pystator.scheduler.fire`` task on this scheduler's app (idempotent;
        the constructor already does it: call it when the worker's app is configured later)."""
        register_task(self.app)

    # --- the Scheduler protocol ----------------------------------------------------------------

    def start(self, fire: FireCallback) -> None:
        """Register ``fire`` as this process's receiver of ``name``'s timers (idempotent).

        A second, different callback under the same name is refused: two Orchestrators sharing
        a name would receive each other's timers. Give each its own ``name``.
        """
        with _callbacks_lock:
            current = _callbacks.get(self.name)
            if current is not None and current != fire:
                raise SchedulerError(
                    f"a CeleryScheduler named {self.name!r} already delivers to another "
                    "callback in this process; give each Orchestrator its own name"
                )
            _callbacks[self.name] = fire
        self._fire = fire

    def arm(self, timers: Sequence[ArmedTimer]) -> None:
        """Publish one ETA task per timer (the first hop, for a delay beyond the horizon)."""
        for timer in timers:
            self.publish(timer)

    def cancel(self, timers: Sequence[ArmedTimer]) -> None:
        """Nothing to send: a timer of a state entry that was left is dropped when it fires."""

    async def aclose(self) -> None:
        """Stop receiving timers in this process (published ones stay with the broker)."""
        self.close()

    def close(self) -> None:
        """Synchronous :meth:`aclose` (idempotent)."""
        with _callbacks_lock:
            if self._fire is not None and _callbacks.get(self.name) == self._fire:
                del _callbacks[self.name]
        self._fire = None

    # --- publishing ----------------------------------------------------------------------------

    def publish(self, timer: ArmedTimer) -> datetime:
        """Send the timer's next hop; returns its ETA. Broker errors become SchedulerError."""
        return publish_hop(
            self.app, self.name, timer, self.horizon, queue=self.queue, now=self.clock()
        )


def publish_hop(
    app: Celery,
    name: str,
    timer: ArmedTimer,
    horizon: timedelta,
    *,
    queue: str | None,
    now: datetime,
) -> datetime:
    """Publish ``timer`` with ``eta = min(due, now + horizon)``; returns that ETA."""
    payload = encode_timer(timer)
    assert timer.due_at is not None  # encode_timer refuses a timer without one
    eta = min(timer.due_at, now + horizon)
    try:
        app.send_task(
            FIRE_TASK,
            args=[name, payload, horizon.total_seconds()],
            eta=eta,
            queue=queue,
            ignore_result=True,
        )
    except Exception as exc:  # kombu/amqp/redis errors
        raise SchedulerError(f"Celery scheduler could not publish {timer.timer_id}: {exc}") from exc
    return eta


def fire_task(task: Task[Any, Any], name: str, payload: str, horizon_seconds: float) -> str:
    """The ``pystator.scheduler.fire`` task: hop again, or deliver the timer when due."""
    try:
        timer = decode_timer(payload)
    except (ValueError, KeyError, TypeError) as exc:
        LOGGER.error("dropping unreadable timer payload %r: %s", payload, exc)
        return "unreadable"
    now = utc_now()
    assert timer.due_at is not None
    if timer.due_at - now > EARLY_TOLERANCE:
        queue = (task.request.delivery_info or {}).get("routing_key")
        publish_hop(task.app, name, timer, timedelta(seconds=horizon_seconds), queue=queue, now=now)
        return "hopped"
    fire = _callbacks.get(name)
    attempt = task.request.retries + 1
    countdown = backoff_ceiling(
        attempt, base_seconds=RETRY_BASE_SECONDS, max_seconds=RETRY_MAX_SECONDS
    )
    if fire is None:
        LOGGER.error(
            "timer %s: no Orchestrator in this worker process started a CeleryScheduler named "
            "%r; retrying in %.0fs",
            timer.timer_id,
            name,
            countdown,
        )
        raise task.retry(countdown=countdown)
    try:
        result = fire(timer)
        if inspect.isawaitable(result):
            asyncio.run(_await(result))
    except Exception as exc:  # the callback failed: retried with backoff, never dropped
        LOGGER.exception("timer %s: fire callback failed; retrying", timer.timer_id)
        raise task.retry(exc=exc, countdown=countdown) from exc
    return "fired"


async def _await(awaitable: Any) -> Any:
    return await awaitable


def register_task(app: Celery) -> None:
    """Add the ``pystator.scheduler.fire`` task to ``app`` (idempotent)."""
    if app in _apps_with_task:
        return
    _apps_with_task.add(app)
    app.task(
        name=FIRE_TASK,
        bind=True,
        ignore_result=True,
        acks_late=True,
        reject_on_worker_lost=True,
        max_retries=None,
        shared=False,  # registered on this app only (see pystator.fleet.app)
    )(fire_task)


__all__ = ["FIRE_TASK", "CeleryScheduler", "fire_task", "publish_hop", "register_task"]
