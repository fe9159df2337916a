"""``GET /api/v1/workers``: every worker process's heartbeat."""

from __future__ import annotations

from fastapi import APIRouter

from pystator.api.deps import ServicesDep, Viewer
from pystator.api.schemas.common import PROBLEMS
from pystator.api.schemas.fleet import WorkerOut
from pystator.services import admin

router = APIRouter(prefix="/api/v1", tags=["fleet"], responses=PROBLEMS)


@router.get("/workers", response_model=list[WorkerOut])
def workers(services: ServicesDep, _viewer: Viewer) -> list[WorkerOut]:
    """Heartbeats, most recent first (``stopped_at`` set for processes that stopped in order)."""
    return [WorkerOut.model_validate(row) for row in admin.list_workers(services.engine)]
