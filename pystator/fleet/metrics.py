"""Prometheus metrics of a worker process: a :class:`~pystator.fleet.observer.FleetObserver`.

``pystator worker --metrics-port 9100`` attaches :class:`PrometheusObserver` and serves
``/metrics``. Every counter and histogram is about this worker's own work (the fleet-wide gauges
computed from the database are the HTTP API's ``/metrics``: :mod:`pystator.services.gauges`):

==========================================  =========  =======================================
metric                                      type       labels / meaning
==========================================  =========  =======================================
``pystator_events_total``                   counter    machine, outcome (applied, rejected,
                                                       stale, retry, dead)
``pystator_event_apply_seconds``            histogram  machine: due time to applied (batch)
``pystator_batch_events``                   histogram  events per committed batch
``pystator_nudges_received_total``          counter    how (dropped, stale, applied)
``pystator_nudges_sent_total``              counter    messages published by this process
``pystator_nudge_failures_total``           counter    publishes the broker refused
``pystator_nudges_left_out_total``          counter    nudges not published: the queue was full
``pystator_actions_total``                  counter    action, outcome (ok, failed, dead)
``pystator_action_seconds``                 histogram  action: run time
``pystator_timers_fired_total``             counter    timers turned into events
``pystator_timer_lateness_seconds``         histogram  fired minus due
``pystator_relay_nudges_total``             counter    stranded entities the relay nudged
``pystator_shadow_comparisons_total``       counter    machine, result (match, mismatch, error)
==========================================  =========  =======================================

``prometheus_client`` is imported when metrics are asked for (an observer built, a port served),
not with this module: it costs a tenth of a second, which every worker paid at start-up
whether it served metrics or not.

Prefork workers: each child counts in files under ``PROMETHEUS_MULTIPROC_DIR`` (the
``prometheus_client`` multiprocess mode; the variable must be set before the worker starts) and
the main process serves their sum.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from pystator.fleet.batch import Batch
from pystator.fleet.observer import FleetObserver
from pystator.fsm_core.clock import utc_now
from pystator.fsm_core.errors import SettingsError
from pystator.fsm_core.records import ArmedTimer
from pystator.stores.sql.rows import OutboxRow

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
#: Seconds: from a millisecond to a minute.
LATENCY_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
BATCH_BUCKETS = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000)


class PrometheusObserver(FleetObserver):
    """Counts what the fleet observer hooks report, in Prometheus metrics on ``registry``."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        from prometheus_client import REGISTRY, Counter, Histogram

        reg = registry if registry is not None else REGISTRY
        self.events = Counter(
            "pystator_events", "Event attempts by outcome", ["machine", "outcome"], registry=reg
        )
        self.apply_seconds = Histogram(
            "pystator_event_apply_seconds",
            "From an event's due time to its batch",
            ["machine"],
            buckets=LATENCY_BUCKETS,
            registry=reg,
        )
        self.batch_events = Histogram(
            "pystator_batch_events",
            "Events per committed batch",
            buckets=BATCH_BUCKETS,
            registry=reg,
        )
        self.nudges_received = Counter(
            "pystator_nudges_received", "Nudges received, by what they cost", ["how"], registry=reg
        )
        self.messages_sent = Counter(
            "pystator_nudges_sent", "Nudge messages published", registry=reg
        )
        self.publish_failures = Counter(
            "pystator_nudge_failures", "Nudge publishes the broker refused", registry=reg
        )
        self.actions = Counter(
            "pystator_actions", "Action runs by outcome", ["action", "outcome"], registry=reg
        )
        self.action_seconds = Histogram(
            "pystator_action_seconds",
            "Action run time",
            ["action"],
            buckets=LATENCY_BUCKETS,
            registry=reg,
        )
        self.timers_count = Counter(
            "pystator_timers_fired", "Timers turned into events", registry=reg
        )
        self.timer_lateness = Histogram(
            "pystator_timer_lateness_seconds",
            "Timers: fired minus due",
            buckets=LATENCY_BUCKETS,
            registry=reg,
        )
        self.nudges_left_out_count = Counter(
            "pystator_nudges_left_out",
            "Nudge messages not published because the broker's queue was full",
            registry=reg,
        )
        self.relay_nudges = Counter(
            "pystator_relay_nudges", "Stranded entities nudged by the relay", registry=reg
        )
        self.shadow_comparisons = Counter(
            "pystator_shadow_comparisons",
            "Shadow-mode decisions compared with the active ones",
            ["machine", "result"],
            registry=reg,
        )

    def batch_committed(self, batch: Batch) -> None:
        """Outcomes, apply latency and batch size (and shadow comparisons)."""
        for compared in batch.shadow:
            verdict = "match" if compared.kind is None else "mismatch"
            if compared.kind == "error":
                verdict = "error"
            self.shadow_comparisons.labels(compared.machine, verdict).inc()
        if not batch.results:
            return
        now = utc_now()
        self.batch_events.observe(len(batch.results))
        for result in batch.results:
            machine = result.event.machine
            self.events.labels(machine, str(result.outcome)).inc()
            if result.event.due_at is not None:
                waited = (now - result.event.due_at).total_seconds()
                self.apply_seconds.labels(machine).observe(max(waited, 0.0))

    def nudges_sent(self, messages: int, entities: int) -> None:
        """Messages published."""
        self.messages_sent.inc(messages)

    def nudge_failed(self, error: str, entities: int) -> None:
        """A publish the broker refused."""
        self.publish_failures.inc()

    def nudges_left_out(self, messages: int, entities: int) -> None:
        """Nudges the gate kept out of a full queue."""
        self.nudges_left_out_count.inc(messages)

    def nudge_handled(self, how: str) -> None:
        """A nudge received, and what it cost."""
        self.nudges_received.labels(how).inc()

    def action_finished(
        self, row: OutboxRow, error: BaseException | None, dead: bool, seconds: float
    ) -> None:
        """One action run."""
        outcome = "ok" if error is None else "dead" if dead else "failed"
        self.actions.labels(row.action, outcome).inc()
        self.action_seconds.labels(row.action).observe(seconds)

    def timers_fired(self, timers: Sequence[ArmedTimer], now: datetime) -> None:
        """Timers fired, and how late."""
        self.timers_count.inc(len(timers))
        for timer in timers:
            if timer.due_at is not None:
                self.timer_lateness.observe(max((now - timer.due_at).total_seconds(), 0.0))

    def relay_republished(self, entities: int) -> None:
        """Stranded work the relay found."""
        self.relay_nudges.inc(entities)


def serve_metrics(port: int, *, pool: str, host: str = "0.0.0.0") -> None:
    """Serve ``/metrics`` on ``port`` from this (main) process; with ``pool='prefork'`` the sum
    of every child's counters, which needs ``PROMETHEUS_MULTIPROC_DIR``."""
    from prometheus_client import CollectorRegistry, start_http_server
    from prometheus_client.multiprocess import MultiProcessCollector

    if pool == "prefork":
        directory = os.environ.get(MULTIPROC_ENV)
        if not directory:
            raise SettingsError(
                f"--metrics-port with --pool prefork needs {MULTIPROC_ENV}: an empty directory "
                "the worker's processes share (set it before starting the worker)"
            )
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
        start_http_server(port, addr=host, registry=registry)
        return
    start_http_server(port, addr=host)


@functools.cache
def process_observer() -> PrometheusObserver:
    """This process's one :class:`PrometheusObserver` (metrics register once per process)."""
    return PrometheusObserver()


__all__ = ["PrometheusObserver", "process_observer", "serve_metrics"]
