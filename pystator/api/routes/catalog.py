"""``GET /api/v1/catalog/builtins``: the built-in guards, actions and sinks a machine definition
may name. Public: it is the same for every deployment and tells nothing about this one."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from pystator.api.schemas.entity_ops import CatalogOut
from pystator.registry import builtins_catalog

router = APIRouter(prefix="/api/v1/catalog", tags=["catalog"])


@router.get("/builtins", response_model=CatalogOut)
def builtins() -> dict[str, Any]:
    """Built-in guards, actions (``http`` included) and sinks, each with a one-line
    description."""
    return builtins_catalog.builtins()


__all__ = ["router"]
