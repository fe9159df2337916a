"""``POST /api/v1/entities/{entity_id}/apply-data``: queue a data update for the worker fleet.

The update is a ``worker_events`` row of kind ``apply_data``, applied in order with the
entity's named events, exactly once: the data merges into the context and, under
``meta.classification.auto_route``, the entity moves to the state whose ``when`` rules match
through an existing transition. **201** ``{event_id, duplicate: false}`` when queued, **200**
for a repeated idempotency key with the same data, **409** for the key with other data, **404**
when the entity does not exist, **422** for invalid input. The outcome (``apply_data.route``:
``moved``, ``no_transition``, ``blocked`` …) is on ``GET /api/v1/events/{event_id}``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Response

from pystator.api.deps import AuditDep, Operator, ServicesDep
from pystator.api.params import EntityIdPath
from pystator.api.routes.entity_ops import checked_context, checked_id, machine_of
from pystator.api.schemas.apply_data import ApplyDataIn, ApplyDataQueued
from pystator.api.schemas.common import PROBLEMS
from pystator.fsm_core.errors import InvalidEventError
from pystator.services.apply_data import ApplyDataRequest, queue_apply_data

router = APIRouter(prefix="/api/v1/entities", tags=["entities"], responses=PROBLEMS)

IdempotencyHeader = Annotated[
    str | None, Header(alias="Idempotency-Key", description="same as the body's idempotency_key")
]


@router.post(
    "/{entity_id}/apply-data",
    response_model=ApplyDataQueued,
    status_code=201,
    responses={200: {"model": ApplyDataQueued, "description": "a repeat: the original event"}},
)
def apply_data(
    entity_id: EntityIdPath,
    body: ApplyDataIn,
    response: Response,
    services: ServicesDep,
    _operator: Operator,
    audit: AuditDep,
    idempotency_key: IdempotencyHeader = None,
) -> ApplyDataQueued:
    """Queue a trigger-less data update for the fleet (see the module doc)."""
    key = body.idempotency_key
    if idempotency_key is not None and key is not None and idempotency_key != key:
        raise InvalidEventError(
            "idempotency_key: the body and the Idempotency-Key header differ",
            details={"field": "idempotency_key", "rule": "mismatch"},
        )
    machine = machine_of(services, body.machine_name)
    request = ApplyDataRequest(
        machine=machine.name,
        entity_id=checked_id(entity_id),
        data=checked_context(services, body.data),
        idempotency_key=key if key is not None else idempotency_key,
        max_attempts=body.max_attempts,
        fires_at=body.fires_at,
    )
    receipt = queue_apply_data(services.engine, services.producer, request)
    response.status_code = 200 if receipt.duplicate else 201
    audit.write(
        status=response.status_code,
        target=f"{machine.name}/{request.entity_id}",
        selection={"event_id": int(receipt)},
        affected=0 if receipt.duplicate else 1,
        queued=True,
    )
    return ApplyDataQueued(
        event_id=int(receipt),
        duplicate=receipt.duplicate,
        status_url=f"/api/v1/events/{int(receipt)}",
    )
