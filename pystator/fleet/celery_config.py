"""The fleet's Celery configuration (no tasks, no wiring): safe defaults and their checks.

Late acks and reject-on-worker-lost (a message whose worker died is redelivered), prefetch of one
message per worker slot, JSON only, no result backend, a Redis visibility timeout far above any
task's run time. A producer's app (which only publishes nudges) and a worker's app (which also
registers the tasks of :mod:`pystator.fleet.tasks`) both start here.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Celery, Task
from celery.worker.request import Request

from pystator.config.settings import Settings
from pystator.fleet.redis_transport import TRANSPORT_PATH as REDIS_TRANSPORT_PATH

MEMORY_BROKER = "memory://"
#: A task longer than this is implausible; a Redis visibility timeout below it risks redelivery
#: of a message while its task is still running.
PLAUSIBLE_TASK_SECONDS = 300
#: Redis visibility timeout we configure (seconds): far above any nudge's run time.
REDIS_VISIBILITY_TIMEOUT_SECONDS = 3600
#: Longest sleep of a worker's ETA timer between looks at its schedule (Celery's default: 1 s).
ETA_PRECISION_SECONDS = 0.02


def is_memory_broker(url: str) -> bool:
    """True for the in-process broker (no cross-process nudges: workers poll)."""
    return url.startswith(MEMORY_BROKER)


_ack_logger = logging.getLogger("pystator.celery")


class BrokerTolerantRequest(Request):  # type: ignore[misc]
    """A task request whose ack or reject never takes the worker down.

    After a Redis broker restart, kombu may ack a finished task on a channel whose connection is
    already gone and raise ``AttributeError`` (not one of its connection errors) inside the
    worker's event loop: Celery calls that an unrecoverable error and stops the worker. Counted
    as a connection error here, the ack is logged as failed and the message is redelivered
    later, which the fleet's tasks tolerate (a nudge or a timer firing is idempotent).
    ``redis://`` brokers get :mod:`pystator.fleet.redis_transport`, which raises a connection
    error there in the first place; this request covers the transports we do not replace
    (``rediss://`` among them).
    """

    acknowledged: bool

    def _errors(self) -> tuple[type[BaseException], ...]:
        return (*self._connection_errors, AttributeError)

    def acknowledge(self) -> None:
        """Ack the message; a failure is logged, not raised."""
        if not self.acknowledged:
            self._on_ack(_ack_logger, self._errors())
            self.acknowledged = True

    def reject(self, requeue: bool = False) -> None:
        """Reject the message; a failure is logged, not raised."""
        if not self.acknowledged:
            self._on_reject(_ack_logger, self._errors(), requeue)
            self.acknowledged = True
            self.send_event("task-rejected", requeue=requeue)


class FleetTask(Task):  # type: ignore[misc]
    """The base of every task of the fleet's apps (see :class:`BrokerTolerantRequest`)."""

    Request: Any = BrokerTolerantRequest


def new_app(settings: Settings) -> Celery:
    """A Celery app on ``settings.broker_url`` with the fleet's safe defaults (no tasks).

    A ``redis://`` broker is reached through :mod:`pystator.fleet.redis_transport` (kombu's
    transport with a fix that keeps a broker restart from stopping the worker).
    """
    celery = Celery(
        "pystator", broker=settings.broker_url, set_as_current=False, task_cls=FleetTask
    )
    if settings.broker_url.startswith("redis://"):
        celery.conf.broker_transport = REDIS_TRANSPORT_PATH
    celery.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
        task_ignore_result=True,
        result_backend=None,
        task_default_queue=settings.queue,
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        worker_cancel_long_running_tasks_on_connection_loss=True,
        broker_transport_options={"visibility_timeout": REDIS_VISIBILITY_TIMEOUT_SECONDS},
        # ETA tasks (timers): Celery's timer otherwise sleeps up to 1 s between looks, which
        # made timers fire up to a second late.
        worker_timer_precision=ETA_PRECISION_SECONDS,
    )
    return celery


def broker_warnings(celery: Celery) -> list[str]:
    """Settings that can cause duplicate delivery or lost work (logged at worker start-up)."""
    conf = celery.conf
    warnings = []
    if not conf.task_acks_late:
        warnings.append(
            "task_acks_late is off: a worker dying mid-task loses the message (the relay will "
            "re-nudge, but later)"
        )
    if not conf.task_reject_on_worker_lost:
        warnings.append("task_reject_on_worker_lost is off: messages of a killed worker are acked")
    broker = str(conf.broker_url or "")
    if broker.startswith(("redis://", "rediss://")):
        timeout = (conf.broker_transport_options or {}).get("visibility_timeout")
        if timeout is not None and float(timeout) < PLAUSIBLE_TASK_SECONDS:
            warnings.append(
                f"Redis visibility_timeout={timeout}s is shorter than a plausible task "
                f"({PLAUSIBLE_TASK_SECONDS}s): unacked messages will be delivered twice"
            )
    if int(conf.worker_prefetch_multiplier or 0) > 4:
        warnings.append(
            "worker_prefetch_multiplier > 4 holds many nudges per worker; a busy worker delays them"
        )
    return warnings


__all__ = ["MEMORY_BROKER", "broker_warnings", "is_memory_broker", "new_app"]
