"""The producer functions, bound to this process's default runtime (settings-driven).

Every function takes the event's fields positionally (``machine_name, entity_id, trigger,
context``) and its options as keywords (:class:`SubmitOptions`: ``fires_at``,
``idempotency_key``, ``max_attempts``), plus ``db_url=`` to pick another database.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, TypedDict, Unpack

from pystator.fleet.producer import EventSpec, Receipt
from pystator.fleet.runtime import get_runtime


class SubmitOptions(TypedDict, total=False):
    """Optional fields of one submitted event."""

    fires_at: datetime | None  # not applied before this time (default: now)
    idempotency_key: str | None  # unique per machine: a repeat returns the first event's id
    max_attempts: int  # failed attempts before the event is dead-lettered (default 5)


def submit_event_sync(
    machine_name: str,
    entity_id: str,
    trigger: str,
    context: Mapping[str, Any] | None = None,
    *,
    db_url: str | None = None,
    **options: Unpack[SubmitOptions],
) -> Receipt:
    """Store an event for the fleet and nudge a worker; returns the event id (an ``int``
    whose ``.duplicate`` says whether the idempotency key already held this same event).

    A repeated ``idempotency_key`` (per machine) with the same entity, trigger and context
    returns the first event's id and is counted in its ``duplicate_count``; with a different
    event it raises :class:`~pystator.IdempotencyConflictError` and stores nothing. Bad input
    raises :class:`~pystator.InvalidEventError` naming the field and the rule.
    """
    spec = EventSpec(
        machine=machine_name, entity_id=entity_id, trigger=trigger, context=context, **options
    )
    return get_runtime(db_url).producer.submit(spec)


async def submit_event(
    machine_name: str,
    entity_id: str,
    trigger: str,
    context: Mapping[str, Any] | None = None,
    *,
    db_url: str | None = None,
    **options: Unpack[SubmitOptions],
) -> Receipt:
    """Async form of :func:`submit_event_sync` (the insert runs in a worker thread)."""
    return await asyncio.to_thread(
        submit_event_sync, machine_name, entity_id, trigger, context, db_url=db_url, **options
    )


def submit_events(
    events: Iterable[EventSpec | Mapping[str, Any]], *, db_url: str | None = None
) -> list[Receipt]:
    """Store many events in one transaction (one INSERT per 2,000 rows); returns their ids.

    Each item is an :class:`EventSpec` or a mapping with its fields (``machine`` or
    ``machine_name``, ``entity_id``, ``trigger``, optional ``context``, ``fires_at``,
    ``idempotency_key``, ``max_attempts``). The whole batch is refused if any item is invalid.
    """
    return get_runtime(db_url).producer.submit_many(events)


def enqueue(
    conn_or_session: Any,
    machine_name: str,
    entity_id: str,
    trigger: str,
    context: Mapping[str, Any] | None = None,
    *,
    db_url: str | None = None,
    **options: Unpack[SubmitOptions],
) -> Receipt:
    """Store an event inside the caller's own transaction (a SQLAlchemy Connection or Session
    on the pystator database): the event exists if and only if that transaction commits."""
    spec = EventSpec(
        machine=machine_name, entity_id=entity_id, trigger=trigger, context=context, **options
    )
    return get_runtime(db_url).producer.enqueue(conn_or_session, spec)


__all__ = ["SubmitOptions", "enqueue", "submit_event", "submit_event_sync", "submit_events"]
