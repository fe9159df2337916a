"""The machine registry: ``GET/POST /api/v1/machines``, ``GET/PUT/DELETE /api/v1/machines/{name}``.

POST and PUT validate the definition and store it as a new immutable version (201), or answer
200 with the current version when it is identical; DELETE retires the machine (its versions
stay). Running workers and producers pick a new version up within
``PYSTATOR_REGISTRY_REFRESH_SECONDS``.

POST and PUT check the definition against the live fleet first: a version that would strand
entities or pending events answers 409 with the compatibility report, unless ``map=OLD=NEW``
(repeatable) sends every removed state's entities somewhere. ``dry_run=true`` answers the report
alone; ``upgrade_policy`` is ``auto`` or ``pinned``. ``POST /api/v1/machines/{name}/compatibility``
answers the report of a candidate (viewer: nothing is stored).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from pystator.api.definition_body import DEFINITION_BODY, Definition
from pystator.api.deps import Admin, AuditDep, ServicesDep, Viewer
from pystator.api.params import MachinePath, MachineVersion
from pystator.api.schemas.common import PROBLEMS
from pystator.api.schemas.machines import (
    CompatibilityOut,
    MachineDetailOut,
    MachineOut,
    PublishedOut,
    SummaryOut,
    VersionOut,
)
from pystator.fsm_core.summary import summarize
from pystator.registry import versions
from pystator.registry.compatibility import parse_state_map
from pystator.registry.versions import Published

#: The 200 of a publish: the definition is the current version's.
UNCHANGED = "identical to the current version: nothing stored"

router = APIRouter(prefix="/api/v1/machines", tags=["machines"], responses=PROBLEMS)

#: ``map=OLD=NEW``, repeatable: where the entities of a removed state go.
StateMapQuery = Annotated[
    list[str] | None,
    Query(
        alias="map",
        description="OLD=NEW (repeatable): move the entities of state OLD to NEW on publish",
    ),
]
DryRunQuery = Annotated[
    bool, Query(description="answer the compatibility report only; store nothing")
]
PolicyQuery = Annotated[
    str | None,
    Query(
        description="auto (entities move to this version on their next event) or pinned "
        "(they stay on theirs until migrated); default: the current version's, else auto"
    ),
]


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
    admin: Admin,
    config: Definition,
    response: Response,
    services: ServicesDep,
    audit: AuditDep,
    state_map: StateMapQuery = None,
    dry_run: DryRunQuery = False,
    upgrade_policy: PolicyQuery = None,
) -> PublishedOut:
    """Store a definition as its machine's next version (the body is ``{"config": …}`` as
    JSON, or the definition file as ``application/yaml``); 409 with the compatibility report
    when it would strand live entities."""
    published = versions.publish(
        services.engine,
        config,
        by=audit.actor,
        state_map=parse_state_map(state_map or ()),
        dry_run=dry_run,
        upgrade_policy=upgrade_policy,
    )
    return _answer(published, response, services)


@router.get("/{name}", response_model=MachineDetailOut)
def show_machine(
    name: MachinePath, services: ServicesDep, _viewer: Viewer, version: MachineVersion | None = None
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
    name: MachinePath,
    admin: Admin,
    config: Definition,
    response: Response,
    services: ServicesDep,
    audit: AuditDep,
    state_map: StateMapQuery = None,
    dry_run: DryRunQuery = False,
    upgrade_policy: PolicyQuery = None,
) -> PublishedOut:
    """Store a new version of ``name`` (its ``meta.machine_name`` must be ``name``); 409 with
    the compatibility report when it would strand live entities."""
    published = versions.publish(
        services.engine,
        config,
        by=audit.actor,
        name=name,
        state_map=parse_state_map(state_map or ()),
        dry_run=dry_run,
        upgrade_policy=upgrade_policy,
    )
    return _answer(published, response, services)


@router.post(
    "/{name}/compatibility", response_model=CompatibilityOut, openapi_extra=DEFINITION_BODY
)
def check_compatibility(
    name: MachinePath,
    _viewer: Viewer,
    config: Definition,
    services: ServicesDep,
    state_map: StateMapQuery = None,
) -> CompatibilityOut:
    """What publishing the candidate as the next version of ``name`` would do to the live
    fleet: entities per removed state, pending events and armed timers it would strand."""
    report = versions.check_compatibility(
        services.engine, name, config, state_map=parse_state_map(state_map or ())
    )
    return CompatibilityOut.model_validate(report.to_dict())


@router.delete("/{name}", response_model=MachineOut)
def retire_machine(
    name: MachinePath, services: ServicesDep, _admin: Admin, audit: AuditDep
) -> MachineOut:
    """Retire ``name``: new events for it are refused, every version is kept (409 while it
    has pending events, armed timers or pending actions)."""
    record = versions.retire(services.engine, name, by=audit.actor)
    _refresh(services)
    return MachineOut.model_validate(record)


def _answer(published: Published, response: Response, services: ServicesDep) -> PublishedOut:
    """The publish's answer (its audit row was written with it: 201 created, else 200)."""
    response.status_code = 201 if published.created else 200
    if published.created:
        _refresh(services)
    return PublishedOut.model_validate(published.to_dict())


def _refresh(services: ServicesDep) -> None:
    """This process sees the change at once (others within the refresh interval)."""
    stored = services.machines.stored
    if stored is not None:
        stored.refresh()
