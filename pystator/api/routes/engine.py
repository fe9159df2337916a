"""The engine over HTTP: ``POST /api/v1/validate`` (also ``/machines/validate``) and
``POST /api/v1/process``. Nothing is stored and no action runs."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from pystator.api.definition_body import DEFINITION_BODY, Definition
from pystator.api.deps import ServicesDep, Viewer
from pystator.api.schemas.common import PROBLEMS
from pystator.api.schemas.machines import ProcessIn, ProcessOut, SummaryOut, ValidOut
from pystator.fsm_core.machine import StateMachine
from pystator.fsm_core.summary import result_to_dict, summarize
from pystator.registry import versions

router = APIRouter(prefix="/api/v1", tags=["engine"], responses=PROBLEMS)


@router.post("/validate", response_model=ValidOut, openapi_extra=DEFINITION_BODY)
@router.post("/machines/validate", response_model=ValidOut, openapi_extra=DEFINITION_BODY)
def validate(_viewer: Viewer, config: Definition) -> ValidOut:
    """200 with a summary, or 422 listing every problem with its path (the body is
    ``{"config": …}`` as JSON, or the definition file as ``application/yaml``)."""
    machine = StateMachine.from_dict(versions.canonical(config), source="<request>")
    return ValidOut(valid=True, summary=SummaryOut(**summarize(machine).to_dict()))


@router.post("/process", response_model=ProcessOut)
def process(body: ProcessIn, services: ServicesDep, _viewer: Viewer) -> dict[str, Any]:
    """The transition ``trigger`` takes from ``current_state`` (a rejected one is 200 with
    ``success: false`` and the reason in ``error``)."""
    if body.config is not None:
        machine = StateMachine.from_dict(versions.canonical(body.config), source="<request>")
    elif body.version is not None:
        assert body.machine is not None
        detail = versions.show_machine(services.engine, body.machine, version=body.version)
        machine = detail.machine(services.machines.bind_to)
    else:
        assert body.machine is not None
        machine = services.machines.get(body.machine)
    return result_to_dict(machine.process(body.current_state, body.trigger, body.context))
