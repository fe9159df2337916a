"""``GET /`` (what this is), ``GET /health`` (liveness: no auth, no database) and ``GET /ready``
(readiness: the database and the broker answer; no auth, for probes)."""

from __future__ import annotations

from importlib.metadata import version
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from pystator.api.deps import ServicesDep
from pystator.services.health import check_readiness

router = APIRouter(tags=["service"])

API_PREFIX = "/api/v1"
#: The installed package's version (``pystator.__version__``, read without importing the
#: package's top level, which sits above the API in the layers).
VERSION = version("pystator")


@router.get("/", summary="name, version and links")
def index() -> dict[str, Any]:
    """Name, version and where to go next."""
    return {
        "name": "pystator",
        "version": VERSION,
        "api": API_PREFIX,
        "links": {
            "docs": "/docs",
            "redoc": "/redoc",
            "openapi": "/openapi.json",
            "health": "/health",
            "ready": "/ready",
        },
    }


@router.get("/health", summary="liveness of this API process")
def health() -> dict[str, str]:
    """200 while the process serves requests (no database involved)."""
    return {"status": "ok"}


@router.get(
    "/ready",
    summary="readiness: database and broker reachable",
    responses={
        503: {
            "description": "not ready: the report names the problems",
            "content": {"application/json": {"schema": {"type": "object"}}},
        }
    },
)
def ready(services: ServicesDep) -> JSONResponse:
    """200 when the database answers (with the fleet's schema) and the broker accepts a
    connection; 503 with the problems otherwise."""
    report = check_readiness(services.settings, engine=services.engine)
    return JSONResponse(report.to_dict(), status_code=200 if report.healthy else 503)
