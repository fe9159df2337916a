"""Many entities in one request: ``POST /api/v1/entities/bulk/create`` and
``/bulk/events``. Each item is done on its own (one item's refusal does not stop the others)
and answered in request order with its own ``error_detail``; at most
``PYSTATOR_API_MAX_BATCH`` items per request (422 beyond). Registered before the
``/entities/{entity_id}/…`` routes so that ``bulk`` is never taken for an entity id.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from pystator.api.deps import AuditDep, Operator, ServicesDep
from pystator.api.routes.entity_ops import (
    checked_context,
    checked_id,
    checked_trigger,
    machine_of,
)
from pystator.api.schemas.common import PROBLEMS
from pystator.api.schemas.entity_ops import (
    BulkCreateIn,
    BulkCreateItemOut,
    BulkCreateOut,
    BulkEventItemOut,
    BulkEventsIn,
    BulkEventsOut,
    ErrorDetailOut,
)
from pystator.fsm_core.errors import FSMError, InvalidEventError, StoreUnavailableError
from pystator.services import entities

router = APIRouter(prefix="/api/v1/entities/bulk", tags=["entities"], responses=PROBLEMS)


def _bounded(services: ServicesDep, field: str, count: int) -> None:
    limit = services.settings.api_max_batch
    if count > limit:
        raise InvalidEventError(
            f"{field}: {count} items; a bulk request holds at most {limit} "
            "(PYSTATOR_API_MAX_BATCH)",
            details={"field": field, "rule": "length"},
        )


def _detail(exc: FSMError) -> ErrorDetailOut:
    return ErrorDetailOut.model_validate(entities.error_detail(exc))


@router.post("/create", response_model=BulkCreateOut)
def bulk_create(
    body: BulkCreateIn, services: ServicesDep, _operator: Operator, audit: AuditDep
) -> BulkCreateOut:
    """Create many entities of one machine at its initial state; each item says whether it
    was created or why not (an existing entity, an invalid id or context)."""
    _bounded(services, "items", len(body.items))
    machine = machine_of(services, body.machine_name)
    items: list[BulkCreateItemOut] = []
    for index, item in enumerate(body.items):
        try:
            key = checked_id(item.entity_id, f"items[{index}].entity_id")
            context = checked_context(services, item.context)
            record, results = entities.create_reporting(services.engine, machine, key, context)
        except StoreUnavailableError:
            raise
        except FSMError as exc:
            items.append(
                BulkCreateItemOut(
                    entity_id=item.entity_id, created=False, error_detail=_detail(exc)
                )
            )
        else:
            items.append(
                BulkCreateItemOut.model_validate(
                    {
                        "entity_id": key,
                        "created": True,
                        "state": record.state,
                        "action_results": list(results),
                    }
                )
            )
    created = sum(1 for i in items if i.created)
    audit.write(
        status=200,
        selection={"machine_name": machine.name, "items": len(items)},
        affected=created,
    )
    return BulkCreateOut(items=items, created=created, failed=len(items) - created)


@router.post("/events", response_model=BulkEventsOut)
def bulk_events(
    body: BulkEventsIn, services: ServicesDep, _operator: Operator, audit: AuditDep
) -> BulkEventsOut:
    """Apply one trigger now to each entity of ``entity_ids`` in turn, the full synchronous
    path per entity (actions included); each item has its own outcome."""
    _bounded(services, "entity_ids", len(body.entity_ids))
    machine = machine_of(services, body.machine_name)
    trigger = checked_trigger(body.trigger)
    context = checked_context(services, body.context)
    items: list[BulkEventItemOut] = []
    for index, entity_id in enumerate(body.entity_ids):
        try:
            key = checked_id(entity_id, f"entity_ids[{index}]")
            outcome = entities.send_event(services.engine, machine, key, trigger, context)
        except StoreUnavailableError:
            raise
        except FSMError as exc:
            items.append(
                BulkEventItemOut(entity_id=entity_id, success=False, error_detail=_detail(exc))
            )
        else:
            items.append(BulkEventItemOut.model_validate(_item(outcome.to_dict())))
    succeeded = sum(1 for i in items if i.success)
    audit.write(
        status=200,
        selection={
            "machine_name": machine.name,
            "trigger": trigger,
            "entity_ids": len(items),
        },
        affected=succeeded,
    )
    return BulkEventsOut(items=items, succeeded=succeeded, failed=len(items) - succeeded)


def _item(outcome: dict[str, Any]) -> dict[str, Any]:
    keys = ("entity_id", "success", "source_state", "target_state", "version")
    return {k: outcome[k] for k in keys} | {
        "action_results": outcome["action_results"],
        "error_detail": outcome["error_detail"],
    }


__all__ = ["router"]
