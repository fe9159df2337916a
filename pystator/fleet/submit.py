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
from pystator.fsm_core.apply_data import APPLY_DATA_TRIGGER
from pystator.fsm_core.records import EventKind


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


def submit_apply_data_sync(
    machine_name: str,
    entity_id: str,
    data: Mapping[str, Any],
    *,
    db_url: str | None = None,
    **options: Unpack[SubmitOptions],
) -> Receipt:
    """Queue a trigger-less data update for the fleet (a ``worker_events`` row of kind
    ``apply_data``); returns its event id like :func:`submit_event_sync`.

    A worker applies it in order with the entity's named events, exactly once: ``data`` merges
    into the context and, under ``meta.classification.auto_route``, the entity moves to the state
    whose ``when`` rules match through an existing transition (see ``docs/apply-data.md``). An
    entity that does not exist when it is applied gets nothing (``rejected``,
    ``entity_not_found``). Idempotency keys, ``fires_at`` and ``max_attempts`` work as for
    named events.
    """
    spec = EventSpec(
        machine=machine_name,
        entity_id=entity_id,
        trigger=APPLY_DATA_TRIGGER,
        context=data,
        kind=EventKind.APPLY_DATA,
        **options,
    )
    return get_runtime(db_url).producer.submit(spec)


async def submit_apply_data(
    machine_name: str,
    entity_id: str,
    data: Mapping[str, Any],
    *,
    db_url: str | None = None,
    **options: Unpack[SubmitOptions],
) -> Receipt:
    """Async form of :func:`submit_apply_data_sync` (the insert runs in a worker thread)."""
    return await asyncio.to_thread(
        submit_apply_data_sync, machine_name, entity_id, data, db_url=db_url, **options
    )


def submit_events(
    events: Iterable[EventSpec | Mapping[str, Any]], *, db_url: str | None = None
) -> list[Receipt]:
    """Store many events in one transaction (one INSERT per 2,000 rows); returns their ids.

    Each item is an :class:`EventSpec` or a mapping with its fields (``machine`` or
    ``machine_name``, ``entity_id``, ``trigger``, optional ``context``, ``fires_at``,
    ``idempotency_key``, ``max_attempts``, ``kind``: ``apply_data`` for a data update, whose
    ``context`` is the data). The whole batch is refused if any item is invalid.
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


__all__ = [
    "SubmitOptions",
    "enqueue",
    "submit_apply_data",
    "submit_apply_data_sync",
    "submit_event",
    "submit_event_sync",
    "submit_events",
]
