"""``GET /api/v1/settings`` (admin): what this API process is configured with — the database
and broker (passwords masked), the timer backend, whether Redis and auth are set up, and every
setting as ``PYSTATOR_NAME`` with secrets shown as ``***``."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from fastapi import APIRouter

from pystator.api.deps import Admin, ServicesDep
from pystator.api.schemas.common import PROBLEMS
from pystator.api.schemas.discovery import DatabaseTestIn, DatabaseTestOut, DiscoveryConfigOut
from pystator.api.schemas.entity_ops import SettingsOut
from pystator.config.settings import ENV_PREFIX, Settings, mask
from pystator.services import discovery

router = APIRouter(prefix="/api/v1/settings", tags=["settings"], responses=PROBLEMS)


def report(settings: Settings, *, auth_configured: bool) -> dict[str, Any]:
    """The settings report (nothing secret in it)."""
    return {
        "database": mask("database_url", settings.database_url),
        "broker": mask("broker_url", settings.broker_url),
        "scheduler": settings.scheduler,
        "redis": settings.redis_url is not None,
        "auth": {
            "configured": auth_configured,
            "jwt": settings.api_jwt_secret is not None or settings.api_jwt_public_key is not None,
        },
        "settings": [
            {"name": ENV_PREFIX + f.name.upper(), "value": mask(f.name, getattr(settings, f.name))}
            for f in fields(Settings)
        ],
    }


@router.get("", response_model=SettingsOut)
def show_settings(services: ServicesDep, _admin: Admin) -> dict[str, Any]:
    """The effective settings of this process, secrets masked."""
    return report(services.settings, auth_configured=services.auth.configured())


@router.get("/discovery-config", response_model=DiscoveryConfigOut)
def discovery_config(services: ServicesDep, _admin: Admin) -> dict[str, Any]:
    """Where discovery keeps its data (``PYSTATOR_DISCOVERY_DATABASE_URL``, else the main
    database; password masked), shadow mode, and the edge thresholds."""
    return discovery.discovery_config(services.settings)


@router.post("/test-discovery-database", response_model=DatabaseTestOut)
def test_discovery_database(
    services: ServicesDep, _admin: Admin, body: DatabaseTestIn | None = None
) -> dict[str, Any]:
    """Can discovery use this database (default: the configured one)? ``ok`` with whether its
    schema is at the newest migration, or the reason it cannot; nothing is changed or created."""
    url = body.database_url if body is not None and body.database_url else None
    return discovery.check_database(url or services.settings.discovery_url)


__all__ = ["report", "router"]
