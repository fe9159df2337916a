"""Replay testing: ``POST /api/v1/machines/{name}/replay`` (operator; changes nothing).

The machine's recorded history re-run through a candidate definition; the answer is the report
of ``pystator replay`` (``ok`` False when anything diverged that ``allow`` does not accept).
"""

from __future__ import annotations

from fastapi import APIRouter

from pystator.api.deps import Operator, ServicesDep
from pystator.api.params import MachinePath
from pystator.api.schemas.common import PROBLEMS
from pystator.api.schemas.replay import ReplayIn, ReplayOut
from pystator.services import replay

router = APIRouter(prefix="/api/v1/machines", tags=["machines"], responses=PROBLEMS)


@router.post("/{name}/replay", response_model=ReplayOut)
def replay_machine(
    name: MachinePath, body: ReplayIn, services: ServicesDep, _operator: Operator
) -> ReplayOut:
    """Replay ``name``'s recorded transitions through ``candidate`` (nothing is written, no
    action runs)."""
    candidate = replay.candidate_machine(
        body.candidate, machine=name, bind=services.machines.bind_to
    )
    allow = tuple(replay.Allowance(a.state, a.trigger, a.kind) for a in body.allow)
    selection = replay.ReplayFilter(since=body.since, entities=body.entities, sample=body.sample)
    report = replay.replay(services.engine, name, candidate, selection=selection, allow=allow)
    return ReplayOut(**report.to_dict())
