"""Queue mode: the event travels in the Celery message itself; no ``worker_events`` row.

Weaker than the default table mode, on purpose and stated in the README: delivery is
at-least-once (a redelivered message is applied again), there are no idempotency keys, replays or
dead-letter rows (a dead event is logged), and one entity's events may be reordered by concurrent
workers or retries. Each application still goes through the processor's one commit path
(:meth:`~pystator.fleet.processor.Processor.apply_carried`): one atomic, version-checked
transaction with its history and outbox rows, actions after commit with their dedup token.
Workers consume these messages with ``pystator worker --source queue``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Unpack

from pystator.fleet.producer import EventSpec
from pystator.fleet.runtime import Runtime
from pystator.fleet.submit import SubmitOptions
from pystator.fleet.tasks import APPLY_EVENT_TASK
from pystator.fsm_core.clock import now_of
from pystator.fsm_core.errors import InvalidEventError, SettingsError


def publish_event(
    runtime: Runtime,
    machine_name: str,
    entity_id: str,
    trigger: str,
    context: Mapping[str, Any] | None = None,
    **options: Unpack[SubmitOptions],
) -> str:
    """Validate and publish one event as a message on ``runtime``'s app; returns its message id
    (``idempotency_key`` is refused: queue mode has no table to remember keys in)."""
    if runtime.app is None:
        raise SettingsError("queue mode needs a real broker: set PYSTATOR_BROKER_URL")
    if options.get("idempotency_key") is not None:
        raise InvalidEventError("queue mode keeps no idempotency keys: use the table mode")
    now = now_of(runtime.processor.clock)  # an ETA message follows hosts' clocks anyway
    spec = EventSpec(
        machine=machine_name, entity_id=entity_id, trigger=trigger, context=context, **options
    )
    row = runtime.producer.validate(spec, now)
    result = runtime.app.send_task(
        APPLY_EVENT_TASK,
        args=[row.machine, row.entity_id, row.trigger, dict(row.context), row.max_attempts],
        queue=runtime.queue,
        eta=row.fires_at if row.fires_at is not None and row.fires_at > now else None,
        ignore_result=True,
    )
    return str(result.id)


__all__ = ["publish_event"]
