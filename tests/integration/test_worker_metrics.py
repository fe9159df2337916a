"""A worker's Prometheus metrics, scraped from its port while the fleet drains: the counters add
up to the events applied (threads pool, and prefork children summed by the main process)."""

from __future__ import annotations

import urllib.request
from pathlib import Path

import pytest
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families

from pystator.stores.sql.connections import dispose, fleet_engine
from pystator.stores.sql.schema import worker_events
from pystator.worker.producer import EventSpec
from tests import worker_processes as procs
from tests.fleet_harness import free_port, producer_runtime
from tests.worker_support import MACHINE

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
    engine = fleet_engine(pg_migrated_url)
    try:
        procs.wait_for(lambda: procs.run(["health"], settings).returncode == 0, "the worker")
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
                return total(samples, "pystator_events_total") >= ENTITIES + 1

            procs.wait_for(counted, "the counters to catch up")
    finally:
        procs.kill(worker)
        dispose(engine)
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
