"""``GET /api/v1/stats``: counts by status and machine, backlog, oldest due event, and applied /
retried / dead per minute over the last hour — from the tables."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from pystator.api.deps import ServicesDep, Viewer
from pystator.api.schemas.common import PROBLEMS
from pystator.api.schemas.fleet import StatsOut
from pystator.services import admin

router = APIRouter(prefix="/api/v1", tags=["fleet"], responses=PROBLEMS)


@router.get("/stats", response_model=StatsOut)
def stats(services: ServicesDep, _viewer: Viewer) -> dict[str, Any]:
    """The fleet's counts."""
    return admin.fleet_stats(services.engine)
