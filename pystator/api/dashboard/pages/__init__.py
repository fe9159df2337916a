"""The dashboard's pages, one module per area; :data:`PAGES` lists their routers in order."""

from __future__ import annotations

from fastapi import APIRouter

from pystator.api.dashboard.pages import (
    actions,
    audit,
    bulk,
    dead,
    entities,
    events,
    idempotency,
    live,
    login,
    machines,
    overview,
    shadow,
    webhooks,
)

PAGES: tuple[APIRouter, ...] = (
    overview.router,
    login.router,
    events.router,
    bulk.router,
    dead.router,
    idempotency.router,
    entities.router,
    machines.router,
    shadow.router,
    actions.router,
    audit.router,
    webhooks.router,
    live.router,
)

__all__ = ["PAGES"]
