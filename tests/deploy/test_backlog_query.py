"""The queries KEDA runs to scale the workers, on real PostgreSQL migrated to head.

The chart is rendered with the test database's URL, and the ScaledObject's queries are run over
the connection string the chart derives for KEDA (a libpq URL, through psycopg directly), so
what is tested is exactly what the scaler would execute.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
import yaml

from pystator.stores.sql.heartbeat_queries import DUE_BACKLOG_SQL
from tests.support.helm_chart import ROOT, render

pytestmark = pytest.mark.integration

EVENT = """
INSERT INTO worker_events
    (machine, entity_id, trigger, context, status, attempts, fires_at, errors,
     created_at, updated_at)
VALUES ('order', :entity, 'pay', '{}', :status, :attempts, now() + CAST(:offset AS interval), '[]',
        now(), now())
"""
TIMER = """
INSERT INTO worker_timers
    (timer_id, machine, entity_id, trigger, timer_key, timer_state, timer_entry, due_at,
     created_at, dead_at)
VALUES (:id, 'order', :entity, 'expire', 'after:0', 'waiting', 1, now() + CAST(:offset AS interval),
        now(), CASE WHEN :set_aside THEN now() END)
"""
ACTION = """
INSERT INTO action_outbox
    (machine, entity_id, entity_version, action, phase, params, context, status, errors,
     available_at, created_at)
VALUES ('order', :entity, 1, 'notify', 'enter', '{}', '{}', :status, '[]',
        now() + CAST(:offset AS interval), now())
"""

#: (entity, status, attempts, fires_at offset): 4 events are due, the rest are not work now.
EVENTS = [
    ("due-new", "pending", 0, "-1 second"),
    ("due-old", "pending", 0, "-3 hours"),
    ("due-retry", "pending", 2, "-5 seconds"),  # its back-off is over: due again
    ("due-other", "pending", 0, "0 seconds"),
    ("future", "pending", 0, "+1 hour"),  # submitted with a later fires_at
    ("retrying", "pending", 1, "+30 seconds"),  # waiting out its back-off
    ("dead", "dead", 5, "-1 hour"),
    ("done", "completed", 1, "-1 hour"),
    ("rejected", "rejected", 1, "-1 hour"),
    ("cancelled", "cancelled", 0, "-1 hour"),
]
#: armed timers are not events yet: 2 are due (the poller will turn them into events), 1 later
TIMERS = [("t-due-1", "-2 seconds"), ("t-due-2", "-1 minute"), ("t-later", "+10 minutes")]
#: a timer that failed its last firing is set aside (dead_at): never work again
SET_ASIDE = [("t-set-aside", "-1 hour")]
#: outbox rows: 1 stranded (its lease is over), 1 still leased, 1 done
ACTIONS = [("a-stranded", "pending", "-1 minute"), ("a-leased", "pending", "+30 seconds")]
ACTIONS += [("a-done", "done", "-1 minute")]


@pytest.fixture
def seeded_url(pg_migrated_url: str) -> Iterator[str]:
    engine = sa.create_engine(pg_migrated_url)
    try:
        with engine.begin() as conn:
            for entity, status, attempts, offset in EVENTS:
                conn.execute(
                    sa.text(EVENT),
                    {"entity": entity, "status": status, "attempts": attempts, "offset": offset},
                )
            for timer_id, offset in TIMERS + SET_ASIDE:
                set_aside = (timer_id, offset) in SET_ASIDE
                conn.execute(
                    sa.text(TIMER),
                    {"id": timer_id, "entity": timer_id, "offset": offset, "set_aside": set_aside},
                )
            for entity, status, offset in ACTIONS:
                conn.execute(
                    sa.text(ACTION), {"entity": entity, "status": status, "offset": offset}
                )
        yield pg_migrated_url
    finally:
        engine.dispose()


def _scaler(database_url: str) -> tuple[str, dict[str, str]]:
    """The KEDA connection string and trigger queries the chart renders for this database."""
    values = {
        "secret": {"databaseUrl": database_url, "brokerUrl": "redis://redis:6379/0"},
        "worker": {"autoscaling": {"minReplicas": 0}},
    }
    release = render(values)
    connection = release.one("Secret", "fleet-pystator-secret")["stringData"]
    scaled = release.one("ScaledObject", "fleet-pystator-worker")["spec"]
    queries = {t["name"]: t["metadata"]["query"] for t in scaled["triggers"]}
    return connection["KEDA_POSTGRESQL_CONNECTION"], queries


def _run(connection: str, query: str) -> int:
    with psycopg.connect(connection) as conn:
        return _count(conn, query)


def _count(conn: psycopg.Connection[Any], query: str) -> int:
    row = conn.execute(query).fetchone()
    assert row is not None
    return int(row[0])


def test_the_backlog_query_counts_due_events_only(seeded_url: str) -> None:
    connection, queries = _scaler(seeded_url)
    assert connection.startswith("postgresql://")
    assert _run(connection, queries["due-backlog"]) == 4


def test_the_wake_query_counts_due_timers_and_stranded_actions(seeded_url: str) -> None:
    connection, queries = _scaler(seeded_url)
    assert _run(connection, queries["due-timers-and-actions"]) == 3


def test_an_empty_fleet_has_no_backlog(pg_migrated_url: str) -> None:
    connection, queries = _scaler(pg_migrated_url)
    assert {name: _run(connection, q) for name, q in queries.items()} == {
        "due-backlog": 0,
        "due-timers-and-actions": 0,
    }


def test_the_backlog_query_reads_the_partial_index_on_pending_fires_at(seeded_url: str) -> None:
    """With many events waiting for later, the count reads the due slice of the index only."""
    connection, queries = _scaler(seeded_url)
    with psycopg.connect(connection) as conn:
        conn.execute(
            "INSERT INTO worker_events (machine, entity_id, trigger, context, status, fires_at,"
            " errors, created_at, updated_at) SELECT 'order', 'later-' || n, 'pay', '{}',"
            " 'pending', now() + interval '1 day', '[]', now(), now()"
            " FROM generate_series(1, 5000) AS n"
        )
        conn.execute("ANALYZE worker_events")
        plan = "\n".join(str(r[0]) for r in conn.execute("EXPLAIN " + queries["due-backlog"]))
        assert _count(conn, queries["due-backlog"]) == 4
    assert "ix_worker_events_pending_due" in plan, plan
    assert "Seq Scan" not in plan, plan


def test_the_chart_scales_on_the_fleets_own_backlog_query() -> None:
    """The KEDA query and the fleet's (pystator health, the API's pystator_backlog_due) agree."""
    values = yaml.safe_load((ROOT / "helm" / "pystator" / "values.yaml").read_text())
    keda = values["worker"]["autoscaling"]["keda"]["query"]
    assert " ".join(keda.split()) == " ".join(DUE_BACKLOG_SQL.split())
