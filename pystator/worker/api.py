"""The producer functions, bound to this process's default runtime (settings-driven)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from pystator.settings import DEFAULT_MAX_ATTEMPTS
from pystator.worker.producer import EventSpec
from pystator.worker.runtime import get_runtime


def submit_event_sync(
    machine_name: str,
    entity_id: str,
    trigger: str,
    context: Mapping[str, Any] | None = None,
    *,
    fires_at: datetime | None = None,
    idempotency_key: str | None = None,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    db_url: str | None = None,
) -> int:
    """Store an event for the fleet and nudge a worker; returns the event id.

    A duplicate ``idempotency_key`` (per machine) returns the first event's id and is counted
    in its ``duplicate_count``. Bad input raises :class:`~pystator.InvalidEventError`.
    """
    spec = EventSpec(
        machine=machine_name,
        entity_id=entity_id,
        trigger=trigger,
        context=context,
        fires_at=fires_at,
        idempotency_key=idempotency_key,
        max_attempts=max_attempts,
    )
    return get_runtime(db_url).producer.submit(spec).event_id


async def submit_event(
    machine_name: str,
    entity_id: str,
    trigger: str,
    context: Mapping[str, Any] | None = None,
    *,
    fires_at: datetime | None = None,
    idempotency_key: str | None = None,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    db_url: str | None = None,
) -> int:
    """Async form of :func:`submit_event_sync` (the insert runs in a worker thread)."""
    return await asyncio.to_thread(
        submit_event_sync,
        machine_name,
        entity_id,
        trigger,
        context,
        fires_at=fires_at,
        idempotency_key=idempotency_key,
        max_attempts=max_attempts,
        db_url=db_url,
    )


def submit_events(
    events: Iterable[EventSpec | Mapping[str, Any]], *, db_url: str | None = None
) -> list[int]:
    """Store many events in one transaction (one INSERT per 2,000 rows); returns their ids.

    Each item is an :class:`EventSpec` or a mapping with its fields (``machine`` or
    ``machine_name``, ``entity_id``, ``trigger``, optional ``context``, ``fires_at``,
    ``idempotency_key``, ``max_attempts``). The whole batch is refused if any item is invalid.
    """
    return [r.event_id for r in get_runtime(db_url).producer.submit_many(events)]


def enqueue(
    conn_or_session: Any,
    machine_name: str,
    entity_id: str,
    trigger: str,
    context: Mapping[str, Any] | None = None,
    *,
    fires_at: datetime | None = None,
    idempotency_key: str | None = None,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    db_url: str | None = None,
) -> int:
    """Store an event inside the caller's own transaction (a SQLAlchemy Connection or Session
    on the pystator database): the event exists if and only if that transaction commits."""
    spec = EventSpec(
        machine=machine_name,
        entity_id=entity_id,
        trigger=trigger,
        context=context,
        fires_at=fires_at,
        idempotency_key=idempotency_key,
        max_attempts=max_attempts,
    )
    return get_runtime(db_url).producer.enqueue(conn_or_session, spec).event_id


__all__ = ["enqueue", "submit_event", "submit_event_sync", "submit_events"]
