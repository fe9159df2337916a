"""Queue mode: the event travels in the Celery message itself; no ``worker_events`` table.

Weaker than the default table mode, on purpose and stated in the README: delivery is
at-least-once (a redelivered message is applied again), there are no idempotency keys, replays or
dead-letter rows (a dead event is logged), and one entity's events may be reordered by concurrent
workers or retries. Each application is still one atomic, version-checked transaction with its
history row and outbox rows, and actions still run after commit with their dedup token.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pystator.fsm_core.errors import StaleVersionError
from pystator.fsm_core.records import NO_VERSION, EventInput, EventOrigin
from pystator.fsm_core.step import StepStatus, apply_event
from pystator.logging import get_logger
from pystator.settings import DEFAULT_MAX_ATTEMPTS
from pystator.stores.sql import entity_queries, event_queries
from pystator.stores.sql.engine import translate_errors
from pystator.stores.sql.event_queries import NewAction
from pystator.worker.database import transaction
from pystator.worker.runtime import Runtime

if TYPE_CHECKING:
    from celery import Celery, Task

APPLY_EVENT_TASK = "pystator.apply_event"
#: Countdown (seconds) before retrying a message whose entity another worker holds.
LOCKED_RETRY_SECONDS = 0.05

log = get_logger("pystator.queue_mode")


class EntityBusy(Exception):
    """Another worker holds the entity's lock; the message is retried shortly."""


def publish_event(
    app: Celery,
    machine_name: str,
    entity_id: str,
    trigger: str,
    context: Mapping[str, Any] | None = None,
    *,
    runtime: Runtime,
    fires_at: datetime | None = None,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
) -> str:
    """Validate and publish one event as a message; returns the Celery message id."""
    from pystator.worker.producer import EventSpec

    now = runtime.processor.clock()
    spec = EventSpec(
        machine=machine_name,
        entity_id=entity_id,
        trigger=trigger,
        context=context,
        fires_at=fires_at,
        max_attempts=max_attempts,
    )
    row = runtime.producer.validate(spec, now)
    result = app.send_task(
        APPLY_EVENT_TASK,
        args=[row.machine, row.entity_id, row.trigger, dict(row.context), row.max_attempts],
        queue=runtime.queue,
        eta=row.fires_at if row.fires_at > now else None,
        ignore_result=True,
    )
    return str(result.id)


def apply_message(
    runtime: Runtime, machine_name: str, entity_id: str, trigger: str, context: Mapping[str, Any]
) -> str:
    """Apply one event carried by a message; returns the step status. Raises to retry."""
    machine = runtime.machines.get(machine_name)
    now = runtime.processor.clock()
    event = EventInput(trigger=trigger, context=context, origin=EventOrigin.EVENT)
    with translate_errors("queue mode"), transaction(runtime.engine) as conn:
        if not event_queries.lock_entity(conn, machine_name, entity_id):
            raise EntityBusy(f"{machine_name}/{entity_id} is locked by another worker")
        record = entity_queries.load_record(conn, machine_name, entity_id)
        outcome = apply_event(machine, record, event, now, entity_id=entity_id)
        if outcome.status != StepStatus.APPLIED or outcome.record is None:
            return outcome.status
        expected = record.version if record is not None else NO_VERSION
        entity_queries.save_record(conn, outcome.record, expected_version=expected)
        if outcome.history is not None:
            entity_queries.insert_history(conn, [outcome.history])
        actions = [
            NewAction(
                event_id=None,
                machine=machine_name,
                entity_id=entity_id,
                entity_version=outcome.record.version,
                action=call.name,
                phase=call.phase.value,
                params=dict(call.params),
                context=dict(outcome.context),
            )
            for call in outcome.actions
        ]
        ids = event_queries.insert_outbox(
            conn, actions, now, lease=runtime.processor.options.outbox_lease
        )
        if outcome.arm or outcome.cancel:  # timers fire as table events (checked for staleness)
            runtime.scheduler.in_transaction(conn, outcome.arm, outcome.cancel, now)
    if outcome.arm or outcome.cancel:
        runtime.scheduler.after_commit(outcome.arm, outcome.cancel)
    runtime.outbox.run_ids(ids)
    return outcome.status


def register_task(app: Celery) -> None:
    """Add the ``pystator.apply_event`` task to ``app``."""
    from pystator.worker.runtime import get_runtime

    def apply_event_task(
        task: Task[Any, Any],
        machine_name: str,
        entity_id: str,
        trigger: str,
        context: Mapping[str, Any],
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    ) -> str:
        runtime = get_runtime()
        attempt = task.request.retries + 1
        fields = {"machine": machine_name, "entity_id": entity_id, "trigger": trigger}
        try:
            status = apply_message(runtime, machine_name, entity_id, trigger, context)
        except (EntityBusy, StaleVersionError) as exc:
            raise task.retry(exc=exc, countdown=LOCKED_RETRY_SECONDS) from exc
        except Exception as exc:  # a guard or the database failed: retry, then give up loudly
            if attempt >= max_attempts:
                log.error("event_dead", attempt=attempt, outcome="dead", error=str(exc), **fields)
                return "dead"
            delay = runtime.processor.options.retry.delay(attempt)
            log.warning("event_failed", attempt=attempt, outcome="retry", error=str(exc), **fields)
            raise task.retry(exc=exc, countdown=delay) from exc
        log.debug("event_processed", attempt=attempt, outcome=status, **fields)
        return status

    app.task(name=APPLY_EVENT_TASK, bind=True, ignore_result=True, max_retries=None, shared=False)(
        apply_event_task
    )


__all__ = ["APPLY_EVENT_TASK", "apply_message", "publish_event", "register_task"]
