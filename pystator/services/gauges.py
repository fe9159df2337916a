"""The fleet-wide gauges of the HTTP API's ``/metrics``, computed from the database at scrape time.

A worker's own counters and histograms are :mod:`pystator.fleet.metrics`; these are about the
whole fleet (backlog, dead events, outbox, timers, live workers) and read the tables through
:func:`pystator.services.admin.gauges`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily, Metric
from sqlalchemy.engine import Engine

from pystator.fsm_core.clock import Clock, utc_now
from pystator.services import admin


class FleetCollector:
    """Fleet-wide gauges computed from the database at scrape time (cached ``cache_seconds``,
    so many scrapers cost one set of queries): what the HTTP API's ``/metrics`` serves.

    ``pystator_backlog`` (machine, due: due|future), ``pystator_backlog_due`` (all machines:
    what the autoscaler scales on), ``pystator_oldest_due_seconds``, ``pystator_dead_events``
    (machine), ``pystator_outbox_actions`` (status: pending|dead), ``pystator_armed_timers``,
    ``pystator_workers_alive``.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        heartbeat_seconds: float,
        cache_seconds: float = 5.0,
        clock: Clock = utc_now,
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.heartbeat_seconds = heartbeat_seconds
        self.cache_seconds = cache_seconds
        self._cached: tuple[float, list[Metric]] | None = None
        self._lock = threading.Lock()

    def collect(self) -> Iterator[Metric]:
        """The gauges (read again once the cache is stale)."""
        with self._lock:
            now = time.monotonic()
            if self._cached is None or now - self._cached[0] > self.cache_seconds:
                self._cached = (now, self._read())
            return iter(self._cached[1])

    def _read(self) -> list[Metric]:
        state = admin.gauges(
            self.engine, heartbeat_seconds=self.heartbeat_seconds, clock=self.clock
        )
        backlog = GaugeMetricFamily(
            "pystator_backlog", "Pending events by machine", labels=["machine", "due"]
        )
        for (machine, due), count in sorted(state.backlog.items()):
            backlog.add_metric([machine, due], count)
        due_total = sum(n for (_m, due), n in state.backlog.items() if due == "due")
        dead = GaugeMetricFamily("pystator_dead_events", "Dead events", labels=["machine"])
        for machine, count in sorted(state.dead_events.items()):
            dead.add_metric([machine], count)
        outbox = GaugeMetricFamily(
            "pystator_outbox_actions", "Outbox actions by status", labels=["status"]
        )
        for status, count in sorted(state.outbox.items()):
            outbox.add_metric([status], count)
        return [
            backlog,
            GaugeMetricFamily(
                "pystator_backlog_due", "Due pending events (the scaling signal)", due_total
            ),
            GaugeMetricFamily(
                "pystator_oldest_due_seconds",
                "Age of the oldest due pending event",
                state.oldest_due_seconds,
            ),
            dead,
            outbox,
            GaugeMetricFamily("pystator_armed_timers", "Armed timers", state.armed_timers),
            GaugeMetricFamily(
                "pystator_workers_alive",
                "Worker processes with a fresh heartbeat",
                state.workers_alive,
            ),
        ]


__all__ = ["FleetCollector"]
