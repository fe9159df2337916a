"""A worker's Prometheus metrics, scraped from its port while the fleet drains: the counters add
up to the events applied (threads pool, and prefork children summed by the main process). The
API's ``/metrics`` (fleet gauges from the database) is scraped beside it, and the workers'
``event_rollups`` (what the dashboard charts) add up to the same events."""

from __future__ import annotations

import urllib.request
from pathlib import Path

import pytest
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families

from pystator.fleet.producer import EventSpec
from pystator.stores.sql.connections import dispose, fleet_engine
from pystator.stores.sql.schema import event_rollups, worker_events
from tests.support import worker_processes as procs
from tests.support.fleet_processes import producer_runtime
from tests.support.ports import free_port, port_open
from tests.support.worker import MACHINE

pytestmark = pytest.mark.integration

ENTITIES = 60


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def total(
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float:
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= set(ls))


@pytest.mark.parametrize("pool", ["threads", "prefork"])
def test_the_counters_add_up_to_the_events_applied(
    pg_migrated_url: str, redis_url: str, unique_name: str, tmp_path: Path, pool: str
) -> None:
    queue = f"pystator-{unique_name}"
    port = free_port()
    settings = {
        "PYSTATOR_DATABASE_URL": pg_migrated_url,
        "PYSTATOR_BROKER_URL": redis_url,
        "PYSTATOR_QUEUE": queue,
    }
    if pool == "prefork":
        multiproc = tmp_path / "prometheus"
        multiproc.mkdir()
        settings["PROMETHEUS_MULTIPROC_DIR"] = str(multiproc)
    args = ["worker", "--pool", pool, "--concurrency", "2", "--metrics-port", str(port)]
    args += ["--machines", str(procs.MACHINES), "--app", procs.APP]
    worker = procs.start(args, settings, tmp_path / "worker.log")
    api_port = free_port()
    api = procs.start(["api", "--port", str(api_port)], settings, tmp_path / "api.log")
    engine = fleet_engine(pg_migrated_url)
    fleet: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    try:
        procs.wait_for(lambda: procs.run(["health"], settings).returncode == 0, "the worker")
        procs.wait_for(lambda: port_open(api_port), "the API to listen")
        with producer_runtime(pg_migrated_url, redis_url, procs.MACHINES, queue=queue) as runtime:
            for n in range(ENTITIES):
                runtime.producer.submit(
                    EventSpec(machine=MACHINE, entity_id=f"m{n}", trigger="open")
                )
            runtime.producer.submit(EventSpec(machine=MACHINE, entity_id="m0", trigger="open"))
            procs.wait_for(lambda: _pending(engine) == 0, "the fleet to drain")
            samples: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}

            def counted() -> bool:
                samples.update(scrape(port))
                # actions run after their batch commits: wait for them too
                return (
                    total(samples, "pystator_events_total") >= ENTITIES + 1
                    and total(samples, "pystator_actions_total") >= ENTITIES
                )

            procs.wait_for(counted, "the counters to catch up")
            procs.wait_for(
                lambda: _rolled_up(engine) == {"applied": ENTITIES, "rejected": 1},
                "the worker's heartbeat to write its roll-ups",
            )

            def settled() -> bool:  # the API caches its gauges for a few seconds
                fleet.update(scrape(api_port))
                return total(fleet, "pystator_backlog_due") == 0

            procs.wait_for(settled, "the API's gauges to show the drained fleet")
    finally:
        procs.kill(api)
        procs.kill(worker)
        dispose(engine)
    assert total(fleet, "pystator_workers_alive") >= 1
    assert total(fleet, "pystator_dead_events") == 0
    assert total(fleet, "pystator_backlog", machine=MACHINE, due="due") == 0
    applied = total(samples, "pystator_events_total", outcome="applied", machine=MACHINE)
    rejected = total(samples, "pystator_events_total", outcome="rejected", machine=MACHINE)
    assert (applied, rejected) == (ENTITIES, 1)  # m0 opened twice: the second is a rejection
    assert total(samples, "pystator_batch_events_count") >= 1
    assert total(samples, "pystator_event_apply_seconds_count") == ENTITIES + 1
    assert total(samples, "pystator_actions_total", outcome="ok") == ENTITIES  # `record` on open
    assert total(samples, "pystator_nudges_received_total") >= 1


def _pending(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        query = sa.select(sa.func.count()).where(worker_events.c.status == "pending")
        return int(conn.execute(query).scalar_one())


def _rolled_up(engine: sa.Engine) -> dict[str, int]:
    with engine.connect() as conn:
        query = (
            sa.select(event_rollups.c.outcome, sa.func.sum(event_rollups.c.count))
            .where(event_rollups.c.machine == MACHINE)
            .group_by(event_rollups.c.outcome)
        )
        return {outcome: int(n) for outcome, n in conn.execute(query)}
