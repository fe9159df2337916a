"""The live feeds: the transition feed's cursor is commit-safe on PostgreSQL, and an SSE stream
resumed with ``Last-Event-ID`` after a disconnect loses nothing and repeats nothing (PostgreSQL
and SQLite); configuration changes stream too."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from pystator.fsm_core.clock import utc_now
from pystator.fsm_core.records import HistoryEntry
from pystator.stores.sql import history_queries
from pystator.stores.sql.connections import dispose, fleet_engine
from tests.support.api_clients import (
    JWT_SECRET,
    MACHINE,
    bearer,
    client,
    create_key,
    drain,
    parcel,
    token,
)
from tests.support.live_app import LiveApp, live_app, read_events, sse_events
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration


@pytest.fixture(params=["postgresql", "sqlite"])
def db_url(request: pytest.FixtureRequest) -> str:
    name = "pg_migrated_url" if request.param == "postgresql" else "sqlite_migrated_url"
    return str(request.getfixturevalue(name))


@pytest.fixture
def app(db_url: str) -> Iterator[LiveApp]:
    with live_app(db_url) as served:
        with served.client() as http:
            assert http.post("/api/v1/machines", json={"config": parcel()}).status_code == 201
        yield served


def _submit(served: LiveApp, db_url: str, entities: list[str]) -> None:
    """Apply ``ship`` to new entities; wait until the feed shows their transitions (on
    PostgreSQL a row shows once every older transaction of the cluster has ended)."""
    with served.client() as http:
        for entity in entities:
            body = {"machine": MACHINE, "entity_id": entity, "trigger": "ship"}
            assert http.post("/api/v1/events", json=body).status_code == 201
    applied = drain(db_url)
    assert applied == len(entities)
    rows = _history_rows(db_url)
    wait_until(lambda: len(_feed_ids(served)) == rows, message="the feed to show them")


def _history_rows(db_url: str) -> int:
    engine = fleet_engine(db_url, pool_size=1)
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text("SELECT count(*) FROM transition_history")).scalar())
    finally:
        dispose(engine)


def _feed_ids(served: LiveApp) -> list[int]:
    ids: list[int] = []
    cursor = 0
    with served.client() as http:
        while True:
            page = http.get("/api/v1/transitions", params={"after": cursor, "limit": 100}).json()
            ids += [item["id"] for item in page["items"]]
            if not page["items"]:
                return ids
            cursor = page["next_cursor"]


def test_sse_resume_after_a_disconnect_loses_nothing_and_repeats_nothing(
    app: LiveApp, db_url: str
) -> None:
    _submit(app, db_url, [f"a{i}" for i in range(6)])
    first_ids = _feed_ids(app)
    assert len(first_ids) >= 6
    received = []
    with (
        app.client() as http,
        http.stream("GET", "/api/v1/transitions/stream", params={"after": 0}) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = sse_events(response)
        received += read_events(events, 3)  # then the client goes away mid-feed
    assert [e.event for e in received] == ["transition"] * 3
    _submit(app, db_url, [f"b{i}" for i in range(5)])  # committed while disconnected
    expected = _feed_ids(app)
    assert len(expected) > len(first_ids)
    last = received[-1].id
    with (
        app.client() as http,
        http.stream(
            "GET", "/api/v1/transitions/stream", headers={"Last-Event-ID": str(last)}
        ) as response,
    ):
        events = sse_events(response)
        received += read_events(events, len(expected) - 3)
        _submit(app, db_url, ["c0"])  # and the stream keeps tailing
        received += read_events(events, len(_feed_ids(app)) - len(expected))
    ids = [int(e.id or 0) for e in received]
    assert ids == _feed_ids(app)  # every transition, once, in feed order
    assert [e.data["id"] for e in received] == ids
    assert {e.data["machine"] for e in received} == {MACHINE}


def test_a_stream_without_cursor_starts_at_the_tail_and_ends_after_max_seconds(
    app: LiveApp, db_url: str
) -> None:
    _submit(app, db_url, ["old"])
    with app.client() as http:
        body = http.get("/api/v1/transitions/stream", params={"max_seconds": 0}).text
        assert "event: transition" not in body and body.startswith("retry:")
        bad = http.get("/api/v1/transitions/stream", headers={"Last-Event-ID": "x" * 5})
        assert bad.status_code == 422
        assert bad.headers["content-type"] == "application/problem+json"


def test_configuration_changes_stream(app: LiveApp) -> None:
    with app.client() as http:
        body = http.get("/api/v1/events/stream", params={"after": 0, "max_seconds": 0}).text
    assert "event: machine.published" in body


def test_the_feed_never_skips_a_row_that_commits_out_of_id_order(pg_migrated_url: str) -> None:
    engine = fleet_engine(pg_migrated_url, pool_size=3)
    try:
        with engine.connect() as slow, engine.connect() as fast, engine.connect() as reader:
            slow_tx = slow.begin()
            history_queries.insert_history(slow, [_entry("slow")])  # draws the smaller id
            with fast.begin():
                history_queries.insert_history(fast, [_entry("fast")])  # commits first
            ids = dict(
                (e, i)
                for e, i in fast.execute(
                    sa.text("SELECT entity_id, id FROM transition_history")
                ).all()
            )
            assert ids == {"fast": ids["fast"]}  # the slow row is not visible yet
            seen = history_queries.feed(reader, limit=10)
            reader.rollback()
            assert seen == []  # held back: the slow writer started before the fast one
            slow_tx.commit()

            def both() -> bool:
                nonlocal seen
                seen = history_queries.feed(reader, limit=10)
                reader.rollback()
                return len(seen) == 2

            wait_until(both, message="both rows in the feed")
            assert [e.entity_id for _, e in seen] == ["slow", "fast"]
            after_first = history_queries.feed(reader, limit=10, after_id=seen[0][0])
            assert [e.entity_id for _, e in after_first] == ["fast"]
    finally:
        dispose(engine)


def test_a_transaction_open_in_another_database_does_not_hold_the_feed_back(
    pg_migrated_url: str, postgres_server_url: str
) -> None:
    engine = fleet_engine(pg_migrated_url, pool_size=2)
    other = sa.create_engine(postgres_server_url)
    try:
        with other.connect() as elsewhere, engine.connect() as reader:
            elsewhere.execute(sa.text("SELECT pg_current_xact_id()"))  # holds an xid, open
            with engine.begin() as conn:
                history_queries.insert_history(conn, [_entry("after")])

            def shown() -> bool:
                rows = history_queries.feed(reader, limit=10)
                reader.rollback()
                return [e.entity_id for _, e in rows] == ["after"]

            wait_until(
                shown, message="the row in the feed while another database's transaction stays open"
            )
            elsewhere.rollback()
    finally:
        other.dispose()
        dispose(engine)


def _entry(entity: str) -> HistoryEntry:
    return HistoryEntry(
        machine=MACHINE,
        entity_id=entity,
        version=1,
        source_state=None,
        target_state="created",
        trigger=None,
        event_id=None,
        origin="direct",
        actions=(),
        payload=None,
        created_at=utc_now(),
        machine_version=None,
    )


def test_the_transitions_page_uses_the_same_order(db_url: str) -> None:
    with client(db_url) as api:
        assert api.get("/api/v1/transitions", params={"after": 0}).json()["items"] == []


def test_streams_take_the_token_as_access_token(db_url: str) -> None:
    key = create_key(db_url, "viewer")
    with client(db_url, api_jwt_secret=JWT_SECRET) as api:
        for path in ("/api/v1/transitions/stream", "/api/v1/events/stream"):
            query = {"max_seconds": 0}
            assert api.get(path, params=query).status_code == 401
            wrong = api.get(path, params={**query, "access_token": "psk_wrong"})
            assert wrong.status_code == 401
            assert wrong.headers["content-type"] == "application/problem+json"
            assert api.get(path, params={**query, "access_token": key}).status_code == 200
            assert api.get(path, params=query, headers=bearer(key)).status_code == 200
            jwt = token("viewer")
            assert api.get(path, params={**query, "access_token": jwt}).status_code == 200
