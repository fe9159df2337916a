"""``GET /api/v1/settings`` (admin): what this API process is configured with — the database
and broker (passwords masked), the timer backend, whether Redis and auth are set up, and every
setting as ``PYSTATOR_NAME`` with secrets shown as ``***``."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from fastapi import APIRouter

from pystator.api.deps import Admin, ServicesDep
from pystator.api.schemas.common import PROBLEMS
from pystator.api.schemas.entity_ops import SettingsOut
from pystator.config.settings import ENV_PREFIX, Settings, mask

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


__all__ = ["report", "router"]
