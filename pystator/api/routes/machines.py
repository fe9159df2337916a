"""The machine registry: ``GET/POST /api/v1/machines``, ``GET/PUT/DELETE /api/v1/machines/{name}``.

POST and PUT validate the definition and store it as a new immutable version (201), or answer
200 with the current version when it is identical; DELETE retires the machine (its versions
stay). Running workers and producers pick a new version up within
``PYSTATOR_REGISTRY_REFRESH_SECONDS``.
"""

from __future__ import annotations

from fastapi import APIRouter, Response

from pystator.api.definition_body import DEFINITION_BODY, Definition
from pystator.api.deps import Admin, AuditDep, ServicesDep, Viewer
from pystator.api.params import MachineVersion
from pystator.api.schemas.common import PROBLEMS
from pystator.api.schemas.machines import (
    MachineDetailOut,
    MachineOut,
    PublishedOut,
    SummaryOut,
    VersionOut,
)
from pystator.fsm_core.summary import summarize
from pystator.registry import versions
from pystator.registry.versions import Published

#: The 200 of a publish: the definition is the current version's.
UNCHANGED = "identical to the current version: nothing stored"

router = APIRouter(prefix="/api/v1/machines", tags=["machines"], responses=PROBLEMS)


@router.get("", response_model=list[MachineOut])
def list_machines(
    services: ServicesDep, _viewer: Viewer, include_retired: bool = False
) -> list[MachineOut]:
    """Stored machines by name."""
    records = versions.list_machines(services.engine, include_retired=include_retired)
    return [MachineOut.model_validate(r) for r in records]


@router.post(
    "",
    response_model=PublishedOut,
    status_code=201,
    openapi_extra=DEFINITION_BODY,
    responses={200: {"model": PublishedOut, "description": UNCHANGED}},
)
def create_machine(
    admin: Admin, config: Definition, response: Response, services: ServicesDep, audit: AuditDep
) -> PublishedOut:
    """Store a definition as its machine's next version (the body is ``{"config": …}`` as
    JSON, or the definition file as ``application/yaml``)."""
    published = versions.publish(services.engine, config, by=admin.name)
    return _answer(published, response, services, audit)


@router.get("/{name}", response_model=MachineDetailOut)
def show_machine(
    name: str, services: ServicesDep, _viewer: Viewer, version: MachineVersion | None = None
) -> MachineDetailOut:
    """A stored machine: the definition of its current version (or ``version``), a summary,
    and every version."""
    detail = versions.show_machine(services.engine, name, version=version)
    return MachineDetailOut(
        **MachineOut.model_validate(detail.record).model_dump(),
        version=detail.version.version,
        definition=dict(detail.version.definition),
        summary=SummaryOut(**summarize(detail.machine()).to_dict()),
        versions=[VersionOut.model_validate(v) for v in detail.versions],
    )


@router.put(
    "/{name}",
    response_model=PublishedOut,
    openapi_extra=DEFINITION_BODY,
    responses={
        200: {"description": UNCHANGED},
        201: {"model": PublishedOut, "description": "stored as a new version"},
    },
)
def update_machine(
    name: str,
    admin: Admin,
    config: Definition,
    response: Response,
    services: ServicesDep,
    audit: AuditDep,
) -> PublishedOut:
    """Store a new version of ``name`` (its ``meta.machine_name`` must be ``name``)."""
    published = versions.publish(services.engine, config, by=admin.name, name=name)
    return _answer(published, response, services, audit)


@router.delete("/{name}", response_model=MachineOut)
def retire_machine(name: str, services: ServicesDep, _admin: Admin, audit: AuditDep) -> MachineOut:
    """Retire ``name``: new events for it are refused, every version is kept (409 while it
    has pending events, armed timers or pending actions)."""
    record = versions.retire(services.engine, name)
    _refresh(services)
    audit.write(status=200, target=name, affected=1)
    return MachineOut.model_validate(record)


def _answer(
    published: Published, response: Response, services: ServicesDep, audit: AuditDep
) -> PublishedOut:
    response.status_code = 201 if published.created else 200
    if published.created:
        _refresh(services)
    audit.write(
        status=response.status_code,
        target=f"{published.name}@{published.version}",
        affected=1 if published.created else 0,
    )
    return PublishedOut.model_validate(published)


def _refresh(services: ServicesDep) -> None:
    """This process sees the change at once (others within the refresh interval)."""
    stored = services.machines.stored
    if stored is not None:
        stored.refresh()
