"""The fleet runs on the database server's clock: a producer whose host clock runs ahead of the
workers' still has its immediate events applied by their own nudge, not left to the relay."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest

from pystator.clock import utc_now
from pystator.stores.sql.connections import dispose, fleet_engine
from pystator.stores.sql.server_clock import clock_offset, fleet_clock
from pystator.worker.producer import EventSpec
from pystator.worker.runtime import Runtime
from tests.worker_support import MACHINE, Hooks, make_runtime

pytestmark = pytest.mark.integration

SKEW = timedelta(seconds=5)


def ahead() -> datetime:
    return utc_now() + SKEW


@pytest.fixture
def runtimes(pg_migrated_url: str) -> Iterator[tuple[Runtime, Runtime]]:
    producer, worker = (
        make_runtime(pg_migrated_url, Hooks()),
        make_runtime(pg_migrated_url, Hooks()),
    )
    yield producer, worker
    producer.close()
    worker.close()


def test_the_offset_to_the_server_clock_is_measured(pg_migrated_url: str) -> None:
    engine = fleet_engine(pg_migrated_url)
    try:
        offset = clock_offset(engine, lambda: utc_now() + SKEW)
        assert offset is not None
        # this host and the server share a clock here: what is measured is the skew we made
        assert abs(offset + SKEW) < timedelta(seconds=1)
    finally:
        dispose(engine)


def test_an_unreachable_server_gives_no_offset() -> None:
    engine = fleet_engine("postgresql+psycopg://nobody@127.0.0.1:1/none")
    try:
        assert clock_offset(engine, utc_now) is None
    finally:
        dispose(engine)


def test_a_sqlite_fleet_uses_the_hosts_clock(sqlite_migrated_url: str) -> None:
    engine = fleet_engine(sqlite_migrated_url)
    try:
        clock = fleet_clock(engine)
        clock.refresh_if_stale()
        assert (clock.probe, clock.measurements) == (None, 0)
    finally:
        dispose(engine)


def submit_ahead(producer: Runtime, entity_id: str) -> None:
    spec = EventSpec(machine=MACHINE, entity_id=entity_id, trigger="open")
    producer.producer.submit(spec)


def test_a_producer_whose_clock_runs_ahead_is_applied_by_its_own_nudge(
    runtimes: tuple[Runtime, Runtime],
) -> None:
    producer, worker = runtimes
    producer.clock.local = ahead  # this host's clock runs 5 s ahead of the server's
    submit_ahead(producer, "aligned")
    assert producer.clock.measurements == 1
    assert abs(producer.clock() - utc_now()) < timedelta(seconds=1)
    assert worker.processor.process_entities([(MACHINE, "aligned")]) == 1


def test_without_the_server_clock_that_event_would_wait_for_the_relay(
    runtimes: tuple[Runtime, Runtime],
) -> None:
    producer, worker = runtimes
    producer.producer.clock = ahead  # the host's own clock, as before the fleet clock
    submit_ahead(producer, "skewed")
    assert worker.processor.process_entities([(MACHINE, "skewed")]) == 0  # "not yet due"
