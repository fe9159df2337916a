"""The FastAPI application: routes, the error shape, the body limit, and the process's services.

``create_app()`` builds the app; its services (database pool, machines, producer, auth) are
built when it starts and closed when it stops. ``pystator api`` and ``uvicorn
pystator.api.main:app`` both serve it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI

from pystator.api import dashboard, openapi, problems
from pystator.api.app_services import Services, build_services
from pystator.api.auth import check_bind
from pystator.api.limits import BodySizeLimit
from pystator.api.manual import PATH as MANUAL_PATH
from pystator.api.manual import manual_app
from pystator.api.params import query_door
from pystator.api.routes import ROUTERS
from pystator.api.routes.root import VERSION
from pystator.config import tracing
from pystator.config.logs import get_logger
from pystator.config.settings import Settings, load_settings

log = get_logger("pystator.api")

DESCRIPTION = """\
The pystator HTTP API: validate and process machine definitions, manage the machine registry,
submit events to the worker fleet, inspect and repair it. Authenticate with
`Authorization: Bearer <API key or JWT>` (or `X-API-Key`); errors are
`application/problem+json`.
"""


def create_app(settings: Settings | None = None, *, services: Services | None = None) -> FastAPI:
    """The app. ``settings`` default to the environment's (read when the app starts);
    ``services`` given by the caller are used as they are (and not closed)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own = services is None
        built = services or build_services(settings or load_settings())
        try:
            check_bind(built.settings.api_host, built.auth)
        except BaseException:
            if own:
                built.close()
            raise
        app.state.services = built
        configured = built.auth.configured()
        log.info(
            "api_started",
            host=built.settings.api_host,
            auth="configured" if configured else "off",
            pool=built.settings.api_db_pool_size,
        )
        if not configured:
            log.warning(
                "api_auth_off",
                message="auth is OFF: no API key exists and no JWT key is set. Trusted as the "
                f"admin 'local': {built.auth.trusted()}. Everything else gets 401. Behind a "
                "proxy, or to let anyone else in, configure auth: 'pystator api-keys create "
                "--role admin' or PYSTATOR_API_JWT_SECRET",
            )
        try:
            yield
        finally:
            if own:
                built.close()

    app = FastAPI(
        title="pystator",
        version=VERSION,
        description=DESCRIPTION,
        lifespan=lifespan,
        dependencies=[Depends(query_door)],  # no control character in a query string or path
    )
    problems.install(app, html=dashboard.HTML_ERRORS)
    for router in ROUTERS:
        app.include_router(router)
    dashboard.install(app)
    openapi.install(app)  # every route's problem answers, declared once
    app.mount(MANUAL_PATH, manual_app(), name="manual")
    max_bytes = (settings or load_settings()).api_max_body_bytes
    app.add_middleware(BodySizeLimit, max_bytes=max_bytes)
    tracing.instrument_app(app)  # OpenTelemetry server spans, when pystator[otel] is installed
    return app


__all__ = ["create_app"]
