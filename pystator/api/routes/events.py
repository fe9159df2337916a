"""Events over HTTP: submit (one or a batch), list with filters and a cursor, show, and retry or
discard by ids or filter (with a dry run and a cap per call).

Submitting answers **201** ``{id, duplicate: false}`` for a new event, **200** ``{id, duplicate:
true}`` for a repeat of an idempotency key with the same event, **409** for the key with a
different event, **422** with the door's message for invalid input.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Response

from pystator.api.deps import AuditDep, Operator, PageLimit, ServicesDep, Viewer
from pystator.api.params import BigInt, Cursor
from pystator.api.schemas.common import PROBLEMS
from pystator.api.schemas.events import (
    BatchIn,
    BatchOut,
    BulkOut,
    EventActionOut,
    EventDetailOut,
    EventFilterIn,
    EventIn,
    EventOut,
    EventPage,
    EventQuery,
    Selection,
    Submitted,
)
from pystator.fleet.producer import EventSpec
from pystator.fsm_core.errors import InvalidEventError
from pystator.services import admin
from pystator.services.admin import EventFilter

router = APIRouter(prefix="/api/v1/events", tags=["events"], responses=PROBLEMS)

IdempotencyHeader = Annotated[
    str | None, Header(alias="Idempotency-Key", description="same as the body's idempotency_key")
]


def _spec(event: EventIn, header_key: str | None = None) -> EventSpec:
    key = event.idempotency_key
    if header_key is not None and key is not None and header_key != key:
        raise InvalidEventError(
            "idempotency_key: the body and the Idempotency-Key header differ",
            details={"field": "idempotency_key", "rule": "mismatch"},
        )
    return EventSpec(
        machine=event.machine,
        entity_id=event.entity_id,
        trigger=event.trigger,
        context=event.context,
        fires_at=event.fires_at,
        idempotency_key=key if key is not None else header_key,
        max_attempts=event.max_attempts,
    )


@router.post(
    "",
    response_model=Submitted,
    status_code=201,
    responses={200: {"model": Submitted, "description": "a repeat: the original event"}},
)
def submit(
    event: EventIn,
    response: Response,
    services: ServicesDep,
    _operator: Operator,
    audit: AuditDep,
    idempotency_key: IdempotencyHeader = None,
) -> Submitted:
    """Submit one event."""
    receipt = services.producer.submit(_spec(event, idempotency_key))
    response.status_code = 200 if receipt.duplicate else 201
    audit.write(
        status=response.status_code,
        target=f"event:{int(receipt)}",
        affected=0 if receipt.duplicate else 1,
        queued=True,
    )
    return Submitted(id=int(receipt), duplicate=receipt.duplicate)


@router.post(
    "/batch",
    response_model=BatchOut,
    status_code=201,
    responses={200: {"model": BatchOut, "description": "no new event: every one was a repeat"}},
)
def submit_batch(
    body: BatchIn, response: Response, services: ServicesDep, _operator: Operator, audit: AuditDep
) -> BatchOut:
    """Submit many events in one transaction: all are stored, or none (the first invalid one
    is named by its ``index``)."""
    limit = services.settings.api_max_batch
    if len(body.events) > limit:
        raise InvalidEventError(
            f"events: {len(body.events)} events; a batch holds at most {limit} "
            "(PYSTATOR_API_MAX_BATCH)",
            details={"field": "events", "rule": "length"},
        )
    receipts = services.producer.submit_many([_spec(e) for e in body.events])
    created = sum(1 for r in receipts if not r.duplicate)
    response.status_code = 201 if created else 200
    audit.write(
        status=response.status_code,
        selection={"events": len(receipts)},
        affected=created,
        queued=True,
    )
    return BatchOut(
        items=[Submitted(id=int(r), duplicate=r.duplicate) for r in receipts],
        created=created,
        duplicates=len(receipts) - created,
    )


@router.get("", response_model=EventPage)
def list_events(
    services: ServicesDep,
    _viewer: Viewer,
    limit: PageLimit,
    where: Annotated[EventQuery, Query()],
    cursor: Cursor = None,
) -> EventPage:
    """Events matching the filters, newest first."""
    rows = admin.list_events(services.engine, _filter(where), limit=limit, before_id=cursor)
    more = len(rows) == limit
    return EventPage(
        items=[EventOut.model_validate(r) for r in rows],
        next_cursor=rows[-1].id if rows and more else None,
        limit=limit,
    )


@router.get("/{event_id}", response_model=EventDetailOut)
def show_event(event_id: BigInt, services: ServicesDep, _viewer: Viewer) -> EventDetailOut:
    """One event: every attempt's error, its outcome, its duplicate count and its actions."""
    detail = admin.show_event(services.engine, event_id)
    return EventDetailOut(
        **EventOut.model_validate(detail.event).model_dump(),
        actions=[EventActionOut.model_validate(a) for a in detail.actions],
    )


@router.post("/retry", response_model=BulkOut)
def retry(body: Selection, services: ServicesDep, _operator: Operator, audit: AuditDep) -> BulkOut:
    """Send finished events (dead, rejected, stale, discarded, cancelled) back to pending with
    fresh attempts and nudge the workers; by ids and/or filter, the oldest ``limit`` first."""
    limit = _cap(body, services)
    change = admin.bulk_retry_events(
        services.engine, _selection(body), services.nudger, limit=limit, dry_run=body.dry_run
    )
    audit.write(status=200, selection=_audited(body, limit), affected=change.affected)
    return BulkOut.model_validate(change)


@router.post("/discard", response_model=BulkOut)
def discard(
    body: Selection, services: ServicesDep, _operator: Operator, audit: AuditDep
) -> BulkOut:
    """Mark pending, dead or rejected events discarded; by ids and/or filter, the oldest
    ``limit`` first."""
    limit = _cap(body, services)
    change = admin.bulk_discard_events(
        services.engine, _selection(body), limit=limit, dry_run=body.dry_run
    )
    audit.write(status=200, selection=_audited(body, limit), affected=change.affected)
    return BulkOut.model_validate(change)


def _filter(where: EventFilterIn | EventQuery, ids: tuple[int, ...] = ()) -> EventFilter:
    return EventFilter(ids=ids, **where.model_dump())


def _selection(body: Selection) -> EventFilter:
    where = _filter(body.filter or EventFilterIn(), tuple(body.ids))
    admin.require_selection(where)
    return where


def _cap(body: Selection, services: ServicesDep) -> int:
    cap = services.settings.api_bulk_limit
    return cap if body.limit is None else min(body.limit, cap)


def _audited(body: Selection, limit: int) -> dict[str, Any]:
    data = body.model_dump(mode="json", exclude_none=True)
    data["limit"] = limit
    return data
