"""Shadow mode: ``/api/v1/discovery/shadow/{machine_name}`` (read), and start / stop / promote.

``GET`` (viewer) answers the machine's active shadow, else its latest: counts, match rate and
the difference groups with example events. ``POST`` attaches a candidate (operator), ``…/stop``
ends it and ``…/promote`` publishes the candidate as the machine's next version (operator);
the three are audited.
"""

from __future__ import annotations

from fastapi import APIRouter

from pystator.api.deps import AuditDep, Operator, ServicesDep, Viewer
from pystator.api.params import MachinePath
from pystator.api.routes.machines import PolicyQuery, StateMapQuery
from pystator.api.schemas.common import PROBLEMS
from pystator.api.schemas.replay import ShadowIn, ShadowOut
from pystator.registry.compatibility import parse_state_map
from pystator.services import shadow

router = APIRouter(prefix="/api/v1/discovery/shadow", tags=["shadow"], responses=PROBLEMS)


@router.get("/{machine_name}", response_model=ShadowOut)
def show_shadow(machine_name: MachinePath, services: ServicesDep, _viewer: Viewer) -> ShadowOut:
    """The machine's shadow comparison."""
    return ShadowOut(**shadow.show_shadow(services.engine, machine_name).to_dict())


@router.post("/{machine_name}", response_model=ShadowOut, status_code=201)
def start_shadow(
    machine_name: MachinePath,
    body: ShadowIn,
    services: ServicesDep,
    operator: Operator,
    audit: AuditDep,
) -> ShadowOut:
    """Attach ``candidate`` as the machine's shadow (409 while one is active)."""
    view = shadow.start_shadow(
        services.engine,
        machine_name,
        body.candidate,
        sample_rate=body.sample_rate,
        by=operator.name,
    )
    audit.write(status=201, target=f"{machine_name}#shadow{view.shadow.id}", affected=1)
    return ShadowOut(**view.to_dict())


@router.post("/{machine_name}/stop", response_model=ShadowOut)
def stop_shadow(
    machine_name: MachinePath, services: ServicesDep, _operator: Operator, audit: AuditDep
) -> ShadowOut:
    """End the machine's active shadow (its comparison is kept)."""
    view = shadow.stop_shadow(services.engine, machine_name)
    audit.write(status=200, target=f"{machine_name}#shadow{view.shadow.id}", affected=1)
    return ShadowOut(**view.to_dict())


@router.post("/{machine_name}/promote", response_model=ShadowOut)
def promote_shadow(
    machine_name: MachinePath,
    services: ServicesDep,
    _operator: Operator,
    audit: AuditDep,
    state_map: StateMapQuery = None,
    upgrade_policy: PolicyQuery = None,
) -> ShadowOut:
    """Publish the shadow's candidate as the machine's next version through the publish path
    (409 with the compatibility report when it would strand live entities, unless ``map``
    says where they go), and end the shadow. The publish writes the audit row
    (``machine.published``)."""
    view, _published = shadow.promote_shadow(
        services.engine,
        machine_name,
        by=audit.actor,
        state_map=parse_state_map(state_map or ()),
        upgrade_policy=upgrade_policy,
    )
    stored = services.machines.stored
    if stored is not None:
        stored.refresh()
    return ShadowOut(**view.to_dict())
