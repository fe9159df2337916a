"""Discovery over HTTP: record observations, preview and build candidates, read them, compare
one with the active machine, keep one as a (never current) machine version, and drafts.

Viewers read and preview (a preview stores nothing), operators record observations, build and
edit drafts, admins register a candidate as a machine version. A batch holds at most
``PYSTATOR_API_MAX_BATCH`` items (422 beyond, like events); a malformed item of a batch is counted
with its position and reason and never stops the batch.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Response

from pystator.api.app_services import Services
from pystator.api.deps import Admin, AuditDep, Operator, ServicesDep, Viewer
from pystator.api.params import BigInt, MachinePath, MachineVersion
from pystator.api.schemas.common import PROBLEMS
from pystator.api.schemas.discovery import (
    CandidateOut,
    DiffOut,
    DraftIn,
    DraftOut,
    DraftPatchIn,
    IngestOut,
    ListingOut,
    ObservationBatchIn,
    ObservationIn,
    PreviewOut,
    RegisteredOut,
    ScopeIn,
)
from pystator.fsm_core.errors import InvalidEventError, NotFoundError
from pystator.fsm_core.naming import describe_name_problem
from pystator.registry.candidates import register_candidate
from pystator.services import discovery
from pystator.services.discovery import BuildScope, InferenceThresholds

router = APIRouter(prefix="/api/v1/discovery", tags=["discovery"], responses=PROBLEMS)


def _name(machine_name: str) -> str:
    problem = describe_name_problem(machine_name, "machine name")
    if problem is not None:
        raise InvalidEventError(problem, details={"field": "machine_name", "rule": "name"})
    return machine_name


def _batch_limit(services: Services, items: list[Any], what: str) -> None:
    limit = services.settings.api_max_batch
    if len(items) > limit:
        raise InvalidEventError(
            f"{what}: {len(items)} items; a batch holds at most {limit} (PYSTATOR_API_MAX_BATCH)",
            details={"field": what, "rule": "length"},
        )


@router.post("/observations", response_model=IngestOut)
def record_observations(
    body: Annotated[ObservationBatchIn | ObservationIn, Body()],
    services: ServicesDep,
    _operator: Operator,
    audit: AuditDep,
) -> dict[str, Any]:
    """Record one observation (an invalid one is a 422), or a batch: ``observations`` (ready
    ones) or ``records`` that ``machine_name``'s ``when:`` rules classify into states."""
    engine = services.discovery.engine
    if isinstance(body, ObservationIn):
        result = discovery.ingest_observations(engine, [body.model_dump(exclude_none=True)])
        if result.errors:
            raise InvalidEventError(result.error_details[0].reason)
        target = body.machine_name
    elif body.records is not None:
        if body.observations is not None:
            raise InvalidEventError("send observations or records, not both")
        if body.machine_name is None:
            raise InvalidEventError("records need machine_name: its when rules classify them")
        _batch_limit(services, body.records, "records")
        machine = services.machines.find(_name(body.machine_name))
        if machine is None:
            raise NotFoundError(
                f"no machine {body.machine_name!r} to classify the records with",
                details={"machine": body.machine_name},
            )
        result = discovery.ingest_records(
            engine, machine, body.records, event_id_field=body.event_id_field
        )
        target = body.machine_name
    elif body.observations is not None:
        if body.event_id_field is not None:
            raise InvalidEventError("event_id_field applies to records only")
        _batch_limit(services, body.observations, "observations")
        result = discovery.ingest_observations(
            engine, body.observations, machine_name=body.machine_name
        )
        target = body.machine_name
    else:
        raise InvalidEventError("send one observation, or observations or records")
    audit.write(
        status=200,
        target=None if target is None else f"discovery:{target}",
        selection={"total": result.total},
        affected=result.accepted,
    )
    return discovery.result_to_dict(result)


def _scope(body: ScopeIn, services: Services) -> BuildScope:
    defaults = services.discovery.engine.thresholds
    thresholds = InferenceThresholds(
        min_edge_count=body.min_edge_count or defaults.min_edge_count,
        min_confidence=(
            defaults.min_confidence if body.min_confidence is None else body.min_confidence
        ),
    )
    return BuildScope(
        machine_name=_name(body.machine_name),
        source=body.source,
        entity_ids=None if body.entity_ids is None else tuple(body.entity_ids),
        thresholds=thresholds,
        since=body.since,
        until=body.until,
        edge_selection=(
            None
            if body.edge_selection is None
            else tuple((e[0], e[1]) for e in body.edge_selection)
        ),
    )


def _initial_state(services: Services, name: str) -> str | None:
    machine = services.machines.find(name)
    return None if machine is None else machine.get_initial_state()


@router.post("/candidates/preview", response_model=PreviewOut)
def preview_candidate(body: ScopeIn, services: ServicesDep, _viewer: Viewer) -> dict[str, Any]:
    """The edges a build of this scope would keep and drop (nothing is stored)."""
    scope = _scope(body, services)
    edges = discovery.preview(
        services.discovery.engine,
        scope,
        fleet_url=services.settings.database_url,
        initial_state=_initial_state(services, scope.machine_name),
    )
    return _preview(scope.machine_name, edges)


def _preview(machine_name: str, edges: list[Any]) -> dict[str, Any]:
    kept = sum(1 for e in edges if e.kept)
    return {
        "machine_name": machine_name,
        "kept": kept,
        "dropped": len(edges) - kept,
        "edges": [e.to_dict() for e in edges],
    }


@router.post("/candidates/build", response_model=CandidateOut, status_code=201)
def build_candidate(
    body: ScopeIn, services: ServicesDep, principal: Operator, audit: AuditDep
) -> dict[str, Any]:
    """Infer and store the machine's next candidate version (it never becomes active)."""
    scope = _scope(body, services)
    candidate = discovery.build(
        services.discovery.engine,
        scope,
        fleet_url=services.settings.database_url,
        initial_state=_initial_state(services, scope.machine_name),
        created_by=principal.name,
    )
    audit.write(
        status=201,
        target=f"discovery:{scope.machine_name}:candidate:{candidate.version}",
        selection={"source": scope.source},
        affected=1,
    )
    return _candidate(candidate)


def _candidate(candidate: Any) -> dict[str, Any]:
    return {
        **discovery.candidate_summary(candidate),
        "config": dict(candidate.config),
        "edges": [e.to_dict() for e in candidate.edges],
    }


@router.get("/candidates/{machine_name}", response_model=ListingOut)
def list_candidates(
    machine_name: MachinePath, services: ServicesDep, _viewer: Viewer
) -> dict[str, Any]:
    """The machine's built candidates (newest first) and its drafts."""
    return discovery.listing(services.discovery.engine, _name(machine_name))


def _get(services: Services, machine_name: str, version: int | None) -> Any:
    candidate = services.discovery.engine.get_candidate(_name(machine_name), version)
    if candidate is None:
        which = "no candidate" if version is None else f"no candidate version {version}"
        raise NotFoundError(
            f"machine {machine_name!r} has {which}: build one first",
            details={"machine": machine_name, "version": version},
        )
    return candidate


@router.get("/candidates/{machine_name}/latest", response_model=CandidateOut)
def latest_candidate(
    machine_name: MachinePath, services: ServicesDep, _viewer: Viewer
) -> dict[str, Any]:
    """The newest candidate of the machine."""
    return _candidate(_get(services, machine_name, None))


@router.get("/candidates/{machine_name}/diff", response_model=DiffOut)
def diff_candidate(
    machine_name: MachinePath,
    services: ServicesDep,
    _viewer: Viewer,
    version: Annotated[
        int | None, Query(ge=1, le=2**31 - 1, description="default: the latest")
    ] = None,
) -> dict[str, Any]:
    """A candidate against the active machine: edges it allows that nobody used, and observed
    edges it does not allow."""
    candidate = _get(services, machine_name, version)
    machine = services.machines.find(machine_name)
    if machine is None:
        raise NotFoundError(
            f"no active machine {machine_name!r} to compare with",
            details={"machine": machine_name},
        )
    return discovery.compare(candidate, machine).to_dict()


@router.get("/candidates/{machine_name}/{version}", response_model=CandidateOut)
def show_candidate(
    machine_name: MachinePath, version: MachineVersion, services: ServicesDep, _viewer: Viewer
) -> dict[str, Any]:
    """One candidate version of the machine."""
    return _candidate(_get(services, machine_name, version))


@router.post(
    "/candidates/{machine_name}/{version}/register",
    response_model=RegisteredOut,
    status_code=201,
    responses={200: {"model": RegisteredOut, "description": "that definition was stored already"}},
)
def register(
    machine_name: MachinePath,
    version: MachineVersion,
    response: Response,
    services: ServicesDep,
    principal: Admin,
    audit: AuditDep,
) -> dict[str, Any]:
    """Store a candidate as a version of its machine: never the current one (workers keep
    applying the active version); 200 when that definition was stored already."""
    candidate = _get(services, machine_name, version)
    registered = register_candidate(services.engine, candidate.config, by=principal.name)
    response.status_code = 201 if registered.created else 200
    audit.write(
        status=response.status_code,
        target=f"machine:{machine_name}:{registered.version}",
        selection={"candidate_version": version},
        affected=1 if registered.created else 0,
    )
    return {
        "machine_name": machine_name,
        "candidate_version": version,
        "registry_version": registered.version,
        "created": registered.created,
        "current_version": registered.current_version,
    }


# --- drafts -------------------------------------------------------------------------------------

DRAFTS = "/machines/{machine_name}/drafts"


def _thresholds(
    base: InferenceThresholds, count: int | None, confidence: float | None
) -> InferenceThresholds | None:
    if count is None and confidence is None:
        return None
    return InferenceThresholds(
        min_edge_count=base.min_edge_count if count is None else count,
        min_confidence=base.min_confidence if confidence is None else confidence,
    )


@router.post(DRAFTS, response_model=DraftOut, status_code=201)
def create_draft(
    machine_name: MachinePath,
    body: DraftIn,
    services: ServicesDep,
    _operator: Operator,
    audit: AuditDep,
) -> dict[str, Any]:
    """Save a draft: which entities, which thresholds, and (mode ``manual``) which edges."""
    engine = services.discovery.engine
    draft = engine.create_draft(
        _name(machine_name),
        title=body.title,
        entity_ids=body.entity_ids,
        thresholds=_thresholds(engine.thresholds, body.min_edge_count, body.min_confidence),
        mode=body.mode,
        manual_edges=body.manual_edge_selection,
    )
    audit.write(status=201, target=f"discovery:{machine_name}:draft:{draft.id}", affected=1)
    return draft.to_dict()


@router.get(DRAFTS + "/{draft_id}", response_model=DraftOut)
def show_draft(
    machine_name: MachinePath, draft_id: BigInt, services: ServicesDep, _viewer: Viewer
) -> dict[str, Any]:
    """One draft of the machine."""
    return discovery.machine_draft(services.discovery.engine, machine_name, draft_id).to_dict()


@router.patch(DRAFTS + "/{draft_id}", response_model=DraftOut)
def update_draft(
    machine_name: MachinePath,
    draft_id: BigInt,
    body: DraftPatchIn,
    services: ServicesDep,
    _operator: Operator,
    audit: AuditDep,
) -> dict[str, Any]:
    """Change the given parts of a draft."""
    engine = services.discovery.engine
    draft = discovery.machine_draft(engine, machine_name, draft_id)
    updated = engine.update_draft(
        draft_id,
        title=body.title,
        entity_ids=body.entity_ids,
        thresholds=_thresholds(draft.thresholds, body.min_edge_count, body.min_confidence),
        mode=body.mode,
        manual_edges=body.manual_edge_selection,
    )
    audit.write(status=200, target=f"discovery:{machine_name}:draft:{draft_id}", affected=1)
    return updated.to_dict()


@router.delete(DRAFTS + "/{draft_id}", status_code=204)
def delete_draft(
    machine_name: MachinePath,
    draft_id: BigInt,
    services: ServicesDep,
    _operator: Operator,
    audit: AuditDep,
) -> Response:
    """Delete a draft (the candidates built from it stay)."""
    engine = services.discovery.engine
    discovery.machine_draft(engine, machine_name, draft_id)
    engine.delete_draft(draft_id)
    audit.write(status=204, target=f"discovery:{machine_name}:draft:{draft_id}", affected=1)
    return Response(status_code=204)


@router.post(DRAFTS + "/{draft_id}/preview", response_model=PreviewOut)
def preview_draft(
    machine_name: MachinePath, draft_id: BigInt, services: ServicesDep, _viewer: Viewer
) -> dict[str, Any]:
    """The edges a build of the draft would keep and drop, from its selected entities only
    (422 when it selects none); nothing is stored."""
    engine = services.discovery.engine
    discovery.machine_draft(engine, machine_name, draft_id)
    return _preview(machine_name, engine.preview_edges_for_draft(draft_id))


@router.post(DRAFTS + "/{draft_id}/build", response_model=CandidateOut, status_code=201)
def build_draft(
    machine_name: MachinePath,
    draft_id: BigInt,
    services: ServicesDep,
    principal: Operator,
    audit: AuditDep,
) -> dict[str, Any]:
    """Build and store a candidate from the draft's scope; the draft records its version."""
    engine = services.discovery.engine
    discovery.machine_draft(engine, machine_name, draft_id)
    candidate = engine.build_candidate_from_draft(draft_id, created_by=principal.name)
    audit.write(
        status=201,
        target=f"discovery:{machine_name}:candidate:{candidate.version}",
        selection={"draft_id": draft_id},
        affected=1,
    )
    return _candidate(candidate)


__all__ = ["router"]
