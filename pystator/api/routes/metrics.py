"""``GET /metrics``: the fleet's gauges for Prometheus, computed from the database at scrape
time and cached a few seconds (backlog by machine and due/future, the autoscaler's due
backlog, oldest due age, dead events, outbox pending/dead, armed timers, workers alive).

Public like ``/health`` (scrapers rarely carry credentials; it holds counts and machine names,
no payloads). Per-worker counters and histograms are on each worker's ``--metrics-port``.
"""

from __future__ import annotations

import threading

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from pystator.api.app_services import Services
from pystator.api.deps import ServicesDep
from pystator.services.gauges import FleetCollector

router = APIRouter(tags=["service"])

#: Seconds a scrape's gauges are reused (many scrapers cost one set of queries).
METRICS_CACHE_SECONDS = 5.0

_lock = threading.Lock()


def _registry(request: Request, services: Services) -> CollectorRegistry:
    """The app's registry, holding its collector (built on the first scrape)."""
    with _lock:
        registry: CollectorRegistry | None = getattr(request.app.state, "metrics", None)
        if registry is None:
            registry = CollectorRegistry(auto_describe=False)
            registry.register(
                FleetCollector(
                    services.engine,
                    heartbeat_seconds=services.settings.heartbeat_seconds,
                    cache_seconds=METRICS_CACHE_SECONDS,
                )
            )
            request.app.state.metrics = registry
        return registry


@router.get("/metrics", summary="Prometheus metrics of the fleet", response_class=PlainTextResponse)
def metrics(request: Request, services: ServicesDep) -> Response:
    """The text exposition format."""
    return Response(generate_latest(_registry(request, services)), media_type=CONTENT_TYPE_LATEST)


__all__ = ["METRICS_CACHE_SECONDS", "router"]
