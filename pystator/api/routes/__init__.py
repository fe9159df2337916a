"""One router per resource. :data:`ROUTERS` is the app's route table, in order; a new resource
(e.g. the dashboard's ``/metrics``) adds its module here."""

from __future__ import annotations

from fastapi import APIRouter

from pystator.api.routes import (
    actions,
    apply_data,
    audit,
    auth,
    bulk,
    catalog,
    discovery,
    engine,
    entities,
    entity_ops,
    events,
    machines,
    metrics,
    observability,
    replay,
    root,
    settings_routes,
    shadow,
    stats,
    streams,
    webhooks,
    workers,
)

ROUTERS: tuple[APIRouter, ...] = (
    root.router,
    auth.router,
    engine.router,
    machines.router,
    replay.router,
    shadow.router,
    streams.router,  # before the events router: "stream" is not an event id
    events.router,
    bulk.router,  # before the /entities/{entity_id}/… routes: "bulk" is not an entity id
    entity_ops.router,  # before /entities/{machine}/{entity_id}: …/state is not an entity id
    apply_data.router,  # before /entities/{machine}/{entity_id} too
    entities.router,
    actions.router,
    stats.router,
    workers.router,
    audit.router,
    metrics.router,
    observability.router,
    catalog.router,
    settings_routes.router,
    discovery.router,
    webhooks.router,
)

__all__ = ["ROUTERS"]
