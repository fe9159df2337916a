"""The fleet gauges served at scrape time, computed from the tables (real PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from pystator.fleet.producer import EventSpec
from pystator.fsm_core.records import ArmedTimer
from pystator.services.gauges import FleetCollector
from pystator.stores.sql import timer_queries
from pystator.stores.sql.connections import dispose
from tests.support.worker import MACHINE, Rig, make_rig

pytestmark = pytest.mark.integration

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture
def rig(pg_migrated_url: str) -> Iterator[Rig]:
    rig = make_rig(pg_migrated_url, retry_base=3600)
    yield rig
    dispose(rig.engine)


def scrape(collector: FleetCollector) -> Samples:
    registry = CollectorRegistry()
    registry.register(collector)  # type: ignore[arg-type]
    text = generate_latest(registry).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_the_gauges_read_the_fleets_state(rig: Rig) -> None:
    later = rig.clock() + timedelta(hours=1)
    for n in range(3):
        rig.submit(f"a{n}", "open")
    rig.producer.submit(EventSpec(machine=MACHINE, entity_id="f", trigger="open", fires_at=later))
    rig.submit("p", "open")
    dead = rig.producer.submit(
        EventSpec(
            machine=MACHINE, entity_id="p", trigger="bump", context={"poison": True}, max_attempts=1
        )
    )
    rig.processor.drain()  # a0-a2 and p opened; p's bump failed its only attempt: dead
    for n in range(2):
        rig.submit(f"a{n}", "close")  # due, not yet applied
    with rig.engine.begin() as conn:
        timer = ArmedTimer(
            machine=MACHINE,
            entity_id="x",
            key="k",
            state="open",
            entry=1,
            trigger="close",
            due_at=later,
        )
        timer_queries.arm(conn, [timer], rig.clock())
    rig.clock.advance(60)
    samples = scrape(
        FleetCollector(rig.engine, heartbeat_seconds=5, cache_seconds=0, clock=rig.clock)
    )

    due = [e for e in rig.events() if e.status == "pending" and e.fires_at <= rig.clock()]
    assert samples[("pystator_backlog", (("due", "due"), ("machine", MACHINE)))] == len(due)
    assert samples[("pystator_backlog", (("due", "future"), ("machine", MACHINE)))] == 1
    assert samples[("pystator_backlog_due", ())] == len(due)
    assert samples[("pystator_oldest_due_seconds", ())] >= 60
    assert samples[("pystator_armed_timers", ())] == 1
    assert samples[("pystator_outbox_actions", (("status", "pending"),))] == 0  # all ran
    assert samples[("pystator_workers_alive", ())] == 0
    assert rig.event(dead).status == "dead"
    assert samples[("pystator_dead_events", (("machine", MACHINE),))] == 1
