"""One router per resource. :data:`ROUTERS` is the app's route table, in order; a new resource
(e.g. the dashboard's ``/metrics``) adds its module here."""

from __future__ import annotations

from fastapi import APIRouter

from pystator.api.routes import (
    actions,
    audit,
    auth,
    engine,
    entities,
    events,
    machines,
    metrics,
    root,
    stats,
    workers,
)

ROUTERS: tuple[APIRouter, ...] = (
    root.router,
    auth.router,
    engine.router,
    machines.router,
    events.router,
    entities.router,
    actions.router,
    stats.router,
    workers.router,
    audit.router,
    metrics.router,
)

__all__ = ["ROUTERS"]
