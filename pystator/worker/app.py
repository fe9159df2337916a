"""The Celery app of the fleet: ``celery -A pystator.worker.app worker`` (or ``pystator worker``).

The broker carries only nudges naming an entity (``pystator.process_entity``) or asking for a
batch drain (``pystator.drain``); the events themselves live in ``worker_events``. Nudges are
idempotent, so redelivery costs a cheap no-op, never a double application.

Safe defaults: late acks and reject-on-worker-lost (a message whose worker died is redelivered),
prefetch of one message per worker slot, JSON only, no result backend.
"""

from __future__ import annotations

from typing import Any

from celery import Celery, signals

from pystator.fsm_core.errors import StoreUnavailableError
from pystator.logging import get_logger
from pystator.settings import load_settings
from pystator.worker.nudge import DRAIN_TASK, PROCESS_ENTITIES_TASK, PROCESS_ENTITY_TASK
from pystator.worker.runtime import get_runtime
from pystator.worker.timers import FIRE_TIMER_TASK, fire_timers_task

#: A task longer than this is implausible; a Redis visibility timeout below it risks redelivery
#: of a message while its task is still running.
PLAUSIBLE_TASK_SECONDS = 300
#: Redis visibility timeout we configure (seconds): far above any nudge's run time.
REDIS_VISIBILITY_TIMEOUT_SECONDS = 3600
#: Longest sleep of a worker's ETA timer between looks at its schedule (Celery's default: 1 s).
ETA_PRECISION_SECONDS = 0.02
#: Batches one ``drain`` message may run before yielding the worker slot.
DRAIN_MAX_BATCHES = 50
#: Task-level retries while the database is unreachable (then the relay takes over).
STORE_MAX_RETRIES = 8
STORE_RETRY_MAX_SECONDS = 60

log = get_logger("pystator.worker.app")


def make_app(broker_url: str, queue: str) -> Celery:
    """A Celery app with the fleet's safe defaults and tasks."""
    celery = Celery("pystator", broker=broker_url, set_as_current=False)
    celery.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
        task_ignore_result=True,
        result_backend=None,
        task_default_queue=queue,
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        worker_cancel_long_running_tasks_on_connection_loss=True,
        broker_transport_options={"visibility_timeout": REDIS_VISIBILITY_TIMEOUT_SECONDS},
        # ETA tasks (timers): Celery's timer otherwise sleeps up to 1 s between looks, which
        # made timers fire up to a second late.
        worker_timer_precision=ETA_PRECISION_SECONDS,
    )
    # The database being down is retried with exponential backoff and jitter; if it stays down
    # the events simply remain pending and the relay nudges them again later.
    # shared=False: these tasks belong to this app. A shared task is also added to every other
    # Celery app in the process, and a second make_app() then gives a new app two callables
    # under one name (Celery's DuplicateTaskNameWarning).
    retrying: dict[str, Any] = {
        "shared": False,
        "ignore_result": True,
        "autoretry_for": (StoreUnavailableError,),
        "retry_backoff": True,
        "retry_backoff_max": STORE_RETRY_MAX_SECONDS,
        "retry_jitter": True,
        "max_retries": STORE_MAX_RETRIES,
    }
    celery.task(name=PROCESS_ENTITY_TASK, **retrying)(process_entity)
    celery.task(name=PROCESS_ENTITIES_TASK, **retrying)(process_entities)
    celery.task(name=DRAIN_TASK, **retrying)(drain)
    from pystator.worker.queue_mode import register_task

    celery.task(name=FIRE_TIMER_TASK, **retrying)(fire_timers_task)
    register_task(celery)  # queue mode: events carried in the message (pystator.apply_event)
    return celery


def process_entity(machine: str, entity_id: str) -> int:
    """Apply the entity's due events (no-op when another worker holds it or nothing is due)."""
    return get_runtime().processor.process_entity(machine, entity_id)


def process_entities(keys: list[list[str]]) -> int:
    """Apply the due events of several named entities (one nudge naming many)."""
    return get_runtime().processor.process_entities([(k[0], k[1]) for k in keys])


def drain() -> int:
    """Apply due events of many entities, batch after batch, until nothing is due."""
    return get_runtime().processor.drain(max_batches=DRAIN_MAX_BATCHES)


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


def _warn_on_start(sender: Any = None, **_kwargs: Any) -> None:
    for message in broker_warnings(app):
        log.warning("unsafe_broker_setting", detail=message)


def _fresh_runtime_after_fork(**_kwargs: Any) -> None:
    # get_runtime() is keyed by pid, so a forked child builds its own engine lazily.
    log.debug("worker_process_init")


signals.worker_ready.connect(_warn_on_start)
signals.worker_process_init.connect(_fresh_runtime_after_fork)

_settings = load_settings()
app = make_app(_settings.broker_url, _settings.queue)
celery = app

__all__ = [
    "app",
    "broker_warnings",
    "drain",
    "make_app",
    "process_entities",
    "process_entity",
]
