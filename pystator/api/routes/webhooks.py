"""Operator webhooks: ``/api/v1/webhooks`` (list: viewer; create, replace, delete: admin),
``/api/v1/webhooks/{webhook_id}/test`` (operator: queues a test delivery) and the delivery log
``/api/v1/webhooks/{webhook_id}/deliveries`` and ``/api/v1/webhooks/deliveries`` (viewer).
Deliveries go out from the durable outbox, never from the request."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query

from pystator.api.deps import Admin, AuditDep, Operator, PageLimit, ServicesDep, Viewer
from pystator.api.schemas.common import PROBLEMS
from pystator.api.schemas.webhooks import (
    DeliveryOut,
    DeliveryPage,
    NewWebhookOut,
    WebhookIn,
    WebhookOut,
)
from pystator.services import webhooks
from pystator.services.webhooks import DeliveryRow, WebhookRow, WebhookSpec

router = APIRouter(prefix="/api/v1/webhooks", tags=["webhooks"], responses=PROBLEMS)

WebhookId = Annotated[int, Path(ge=1, le=2**62)]
Before = Annotated[
    int | None, Query(ge=1, le=2**62, description="next_cursor of the previous page")
]
DeliveryStatus = Literal["pending", "delivered", "failing"]


def _out(row: WebhookRow) -> WebhookOut:
    return WebhookOut(
        id=row.id,
        name=row.name,
        url=row.url,
        kinds=list(row.kinds),
        machine=row.machine,
        states=list(row.states),
        dwell_seconds=row.dwell_seconds,
        enabled=row.enabled,
        secret_hint=webhooks.masked(row.secret),
        created_by=row.created_by,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _delivery(row: DeliveryRow) -> DeliveryOut:
    status = row.status
    if row.outbox_status in ("dead", "discarded"):
        status = row.outbox_status
    return DeliveryOut(
        id=row.id,
        webhook_id=row.webhook_id,
        kind=row.kind,
        source_key=row.source_key,
        payload=dict(row.payload),
        status=status,
        attempts=row.attempts,
        response_status=row.response_status,
        last_error=row.last_error,
        outbox_id=row.outbox_id,
        next_attempt_at=row.next_attempt_at,
        created_at=row.created_at,
        delivered_at=row.delivered_at,
    )


def _spec(body: WebhookIn) -> WebhookSpec:
    return WebhookSpec(
        name=body.name,
        url=body.url,
        kinds=list(body.kinds),
        secret=body.secret,
        machine=body.machine,
        states=body.states,
        dwell_seconds=body.dwell_seconds,
        enabled=body.enabled,
    )


@router.get("", response_model=list[WebhookOut])
def list_webhooks(services: ServicesDep, _viewer: Viewer) -> list[WebhookOut]:
    """Every webhook (secrets masked)."""
    return [_out(w) for w in webhooks.list_all(services.engine)]


@router.post("", response_model=NewWebhookOut, status_code=201)
def create_webhook(
    body: WebhookIn, services: ServicesDep, _admin: Admin, audit: AuditDep
) -> NewWebhookOut:
    """Create a webhook; the answer holds its secret, and nothing else ever will (audited with
    it)."""
    row = webhooks.create(services.engine, _spec(body), by=audit.actor)
    return NewWebhookOut(**_out(row).model_dump(), secret=row.secret)


# before /{webhook_id}: "deliveries" is not an id
@router.get("/deliveries", response_model=DeliveryPage)
def all_deliveries(
    services: ServicesDep,
    _viewer: Viewer,
    limit: PageLimit,
    before: Before = None,
    status: DeliveryStatus | None = None,
) -> DeliveryPage:
    """Every webhook's deliveries, newest first."""
    rows = webhooks.deliveries(
        services.engine, webhook_id=None, limit=limit, before_id=before, status=status
    )
    return _page(rows, limit)


@router.get("/{webhook_id}", response_model=WebhookOut)
def get_webhook(webhook_id: WebhookId, services: ServicesDep, _viewer: Viewer) -> WebhookOut:
    """One webhook (secret masked)."""
    return _out(webhooks.get(services.engine, webhook_id))


@router.put("/{webhook_id}", response_model=WebhookOut)
def replace_webhook(
    webhook_id: WebhookId, body: WebhookIn, services: ServicesDep, _admin: Admin, audit: AuditDep
) -> WebhookOut:
    """Replace a webhook's settings (its secret too, when one is given; audited with it)."""
    row = webhooks.update(services.engine, webhook_id, _spec(body), by=audit.actor)
    return _out(row)


@router.delete("/{webhook_id}", response_model=WebhookOut)
def delete_webhook(
    webhook_id: WebhookId, services: ServicesDep, _admin: Admin, audit: AuditDep
) -> WebhookOut:
    """Delete a webhook (its delivery log stays; queued deliveries are dropped unsent; audited
    with it)."""
    row = webhooks.delete(services.engine, webhook_id, by=audit.actor)
    return _out(row)


@router.post("/{webhook_id}/test", response_model=DeliveryOut, status_code=202)
def test_webhook(
    webhook_id: WebhookId, services: ServicesDep, operator: Operator, audit: AuditDep
) -> DeliveryOut:
    """Queue a ``test`` delivery: the outbox sends it (signed, retried) like any other; follow
    it in the delivery log."""
    row = webhooks.send_test(services.engine, webhook_id, by=operator.name)
    audit.write(status=202, target=f"webhook:{webhook_id}", affected=1)
    return _delivery(row)


@router.get("/{webhook_id}/deliveries", response_model=DeliveryPage)
def webhook_deliveries(
    webhook_id: WebhookId,
    services: ServicesDep,
    _viewer: Viewer,
    limit: PageLimit,
    before: Before = None,
    status: DeliveryStatus | None = None,
) -> DeliveryPage:
    """One webhook's deliveries, newest first: status, attempts, last answer or error."""
    rows = webhooks.deliveries(
        services.engine, webhook_id=webhook_id, limit=limit, before_id=before, status=status
    )
    return _page(rows, limit)


def _page(rows: list[DeliveryRow], limit: int) -> DeliveryPage:
    return DeliveryPage(
        items=[_delivery(r) for r in rows],
        next_cursor=rows[-1].id if rows and len(rows) == limit else None,
        limit=limit,
    )


__all__ = ["router"]
