"""Every Celery task of the fleet: its name and its body, in one place.

The broker carries only nudges (``process_entity``, ``process_entities``, ``drain``), the Celery
timer backend's ETA messages (``fire_timers``) and, in queue mode only, whole events
(``apply_event``). Bodies take the process's :class:`~pystator.fleet.runtime.Runtime` from the
``runtime`` callable given to :func:`register`, so this module imports no wiring and anything
(the nudger, the timer sink, queue mode's publisher) may import the names from here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pystator.config.logs import get_logger
from pystator.config.settings import DEFAULT_MAX_ATTEMPTS
from pystator.fsm_core.errors import EntityBusyError, StaleVersionError, StoreUnavailableError
from pystator.fsm_core.records import EventInput, EventOrigin, Outcome
from pystator.schedulers.fleet_celery_timers import EtaPublisher

if TYPE_CHECKING:
    from celery import Celery, Task

    from pystator.fleet.runtime import Runtime

PROCESS_ENTITY_TASK = "pystator.process_entity"
PROCESS_ENTITIES_TASK = "pystator.process_entities"
DRAIN_TASK = "pystator.drain"
FIRE_TIMERS_TASK = "pystator.fire_timers"
APPLY_EVENT_TASK = "pystator.apply_event"

#: The tasks a worker consumes, by event source (``pystator worker --source``).
TABLE_TASKS = (PROCESS_ENTITY_TASK, PROCESS_ENTITIES_TASK, DRAIN_TASK, FIRE_TIMERS_TASK)
QUEUE_TASKS = (APPLY_EVENT_TASK, FIRE_TIMERS_TASK)

#: Batches one ``drain`` message may run before yielding the worker slot.
DRAIN_MAX_BATCHES = 50
#: Task-level retries while the database is unreachable (then the relay takes over).
STORE_MAX_RETRIES = 8
STORE_RETRY_MAX_SECONDS = 60
#: Countdown (seconds) before retrying a carried event whose entity another worker holds.
LOCKED_RETRY_SECONDS = 0.05

RuntimeProvider = Callable[[], "Runtime"]

log = get_logger("pystator.worker.tasks")


def process_entity(
    runtime: Runtime, machine: str, entity_id: str, through: int | None = None
) -> int:
    """Apply the entity's due events (no-op when another worker holds it or nothing is due;
    ``through``: the highest event id the nudge announces, see :mod:`pystator.fleet.nudge`)."""
    return runtime.processor.process_entity(machine, entity_id, through)


def process_entities(runtime: Runtime, keys: list[list[str]], through: int | None = None) -> int:
    """Apply the due events of several named entities (one nudge naming many)."""
    return runtime.processor.process_entities([(k[0], k[1]) for k in keys], through=through)


def drain(runtime: Runtime, through: int | None = None) -> int:
    """Apply due events of many entities, batch after batch, until nothing is due."""
    return runtime.processor.drain(max_batches=DRAIN_MAX_BATCHES, through=through)


def fire_timers(runtime: Runtime, timer_ids: list[str] | str) -> int:
    """Fire the timers still armed (a redelivered message finds no rows and does nothing) and
    nudge their entities. Applying them here instead made each task several transactions long,
    and a burst of timer tasks queued up behind itself."""
    ids = [timer_ids] if isinstance(timer_ids, str) else list(timer_ids)
    return len(runtime.timer_firing.fire_ids(ids))


def apply_event(
    runtime: Runtime,
    task: Task[Any, Any],
    machine_name: str,
    entity_id: str,
    trigger: str,
    context: Mapping[str, Any],
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
) -> str:
    """Queue mode: apply the event the message carries; retry it with backoff, then log it dead."""
    attempt = task.request.retries + 1
    fields = {"machine": machine_name, "entity_id": entity_id, "trigger": trigger}
    event = EventInput(trigger=trigger, context=context, origin=EventOrigin.EVENT)
    try:
        status = runtime.processor.apply_carried(machine_name, entity_id, event)
    except (EntityBusyError, StaleVersionError) as exc:
        raise task.retry(exc=exc, countdown=LOCKED_RETRY_SECONDS) from exc
    except Exception as exc:  # a guard or the database failed: retry, then give up loudly
        if attempt >= max_attempts:
            log.error("event_dead", attempt=attempt, outcome="dead", error=str(exc), **fields)
            return Outcome.DEAD.value
        delay = runtime.processor.options.retry.delay(attempt)
        log.warning("event_failed", attempt=attempt, outcome="retry", error=str(exc), **fields)
        raise task.retry(exc=exc, countdown=delay) from exc
    return status.value


def register(app: Celery, runtime: RuntimeProvider, *, source: str = "table") -> None:
    """Register on ``app`` the tasks a worker of ``source`` (``table`` or ``queue``) consumes.

    ``shared=False``: these tasks belong to this app (a shared task is added to every Celery app
    of the process, and a second app then holds two callables under one name).
    """
    retrying: dict[str, Any] = {
        "shared": False,
        "ignore_result": True,
        "autoretry_for": (StoreUnavailableError,),
        "retry_backoff": True,
        "retry_backoff_max": STORE_RETRY_MAX_SECONDS,
        "retry_jitter": True,
        "max_retries": STORE_MAX_RETRIES,
    }
    names = TABLE_TASKS if source == "table" else QUEUE_TASKS

    def process_entity_task(machine: str, entity_id: str, through: int | None = None) -> int:
        return process_entity(runtime(), machine, entity_id, through)

    def process_entities_task(keys: list[list[str]], through: int | None = None) -> int:
        return process_entities(runtime(), keys, through)

    def drain_task(through: int | None = None) -> int:
        return drain(runtime(), through)

    def fire_timers_task(timer_ids: list[str] | str) -> int:
        return fire_timers(runtime(), timer_ids)

    def apply_event_task(task: Task[Any, Any], *args: Any) -> str:
        return apply_event(runtime(), task, *args)

    bodies: dict[str, Callable[..., Any]] = {
        PROCESS_ENTITY_TASK: process_entity_task,
        PROCESS_ENTITIES_TASK: process_entities_task,
        DRAIN_TASK: drain_task,
        FIRE_TIMERS_TASK: fire_timers_task,
    }
    for name in names:
        if name == APPLY_EVENT_TASK:
            app.task(name=name, bind=True, ignore_result=True, max_retries=None, shared=False)(
                apply_event_task
            )
        else:
            app.task(name=name, **retrying)(bodies[name])


def timer_publisher(app: Celery, queue: str) -> EtaPublisher:
    """What the Celery timer backend publishes: one ``fire_timers`` ETA message per slot."""

    def publish(timer_ids: list[str], eta: datetime) -> None:
        app.send_task(FIRE_TIMERS_TASK, args=[timer_ids], eta=eta, queue=queue, ignore_result=True)

    return publish


__all__ = [
    "APPLY_EVENT_TASK",
    "DRAIN_TASK",
    "FIRE_TIMERS_TASK",
    "PROCESS_ENTITIES_TASK",
    "PROCESS_ENTITY_TASK",
    "QUEUE_TASKS",
    "TABLE_TASKS",
    "RuntimeProvider",
    "register",
    "timer_publisher",
]
