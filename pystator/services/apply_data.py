"""Queueing a data update (apply-data) for the fleet: the HTTP route and ``pystator apply-data``
share this one call.

A queued apply-data is a ``worker_events`` row of kind ``apply_data`` (see
:func:`pystator.fleet.submit.submit_apply_data_sync`); the entity must exist when it is queued
(:class:`~pystator.fsm_core.errors.EntityNotFoundError`, a 404, otherwise). If it is purged
before a worker applies the update, the event is rejected with ``entity_not_found``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Engine

from pystator.config.settings import DEFAULT_MAX_ATTEMPTS
from pystator.fleet.producer import EventSpec, Producer, Receipt
from pystator.fsm_core.apply_data import APPLY_DATA_TRIGGER
from pystator.fsm_core.records import EventKind
from pystator.services import entities


@dataclass(frozen=True, slots=True, kw_only=True)
class ApplyDataRequest:
    """One data update to queue for an existing entity."""

    machine: str
    entity_id: str
    data: Mapping[str, Any]
    idempotency_key: str | None = None
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    fires_at: datetime | None = None


def queue_apply_data(engine: Engine, producer: Producer, request: ApplyDataRequest) -> Receipt:
    """Check the entity exists (404 otherwise), then queue the update; returns its receipt
    (the event id; ``duplicate`` for a repeated idempotency key with the same data)."""
    entities.load(engine, request.machine, request.entity_id)
    spec = EventSpec(
        machine=request.machine,
        entity_id=request.entity_id,
        trigger=APPLY_DATA_TRIGGER,
        context=request.data,
        kind=EventKind.APPLY_DATA,
        idempotency_key=request.idempotency_key,
        max_attempts=request.max_attempts,
        fires_at=request.fires_at,
    )
    return producer.submit(spec)


__all__ = ["ApplyDataRequest", "queue_apply_data"]
