"""The fuzzer's findings (issue 28) as tests, on PostgreSQL: integers beyond 64 bits in ids,
cursors and limits, and control characters in query strings and paths, are 422 problems
naming the parameter, never a database error."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from pystator.api.params import BIGINT_MAX
from pystator.api.problems import MEDIA_TYPE
from tests.support.api_clients import client, parcel

pytestmark = pytest.mark.integration

HUGE = 2**64  # the fuzzer's kind of number: one past what a BIGINT column holds
TOO_BIG = BIGINT_MAX + 1


@pytest.fixture(scope="module")
def api(postgres_server_url: str) -> Iterator[TestClient]:
    """One app on one migrated PostgreSQL database for the whole module (auth off: the local
    admin)."""
    import uuid

    import sqlalchemy as sa

    from pystator.stores.sql import migrator

    name = f"pystator_t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(postgres_server_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        url = sa.make_url(postgres_server_url).set(database=name).render_as_string(False)
        migrator.upgrade(url)
        with client(url) as test_client:
            yield test_client
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


def _refused(response: Any, path: str) -> None:
    """A 422 problem whose errors name ``path``."""
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith(MEDIA_TYPE)
    paths = [e["path"] for e in response.json()["errors"]]
    assert any(p == path or p.startswith(path + ".") for p in paths), paths


#: (method, url, JSON body, the error path) of the fuzzer's 500s and their kin.
OUT_OF_RANGE = [
    ("POST", "/api/v1/events/retry", {"ids": [1, HUGE]}, "body.ids"),
    ("POST", "/api/v1/events/discard", {"ids": [TOO_BIG]}, "body.ids"),
    ("POST", "/api/v1/events/retry", {"ids": [-1]}, "body.ids"),
    ("POST", "/api/v1/events/retry", {"ids": [1], "limit": HUGE}, "body.limit"),
    ("POST", "/api/v1/actions/retry", {"ids": [HUGE]}, "body.ids"),
    ("POST", "/api/v1/actions/discard", {"ids": [TOO_BIG]}, "body.ids"),
    ("POST", "/api/v1/actions/discard", {"filter": {"event_id": HUGE}}, "body.filter"),
    ("GET", f"/api/v1/events?cursor={HUGE}", None, "query.cursor"),
    ("GET", f"/api/v1/events?limit={HUGE}", None, "query.limit"),
    ("GET", f"/api/v1/events/{HUGE}", None, "path.event_id"),
    ("GET", f"/api/v1/transitions?after={HUGE}", None, "query.after"),
    ("GET", f"/api/v1/actions?cursor={TOO_BIG}", None, "query.cursor"),
    ("GET", f"/api/v1/actions?event_id={HUGE}", None, "query.event_id"),
    ("GET", f"/api/v1/audit?cursor={HUGE}", None, "query.cursor"),
    ("DELETE", f"/api/v1/api-keys/{HUGE}", None, "path.key_id"),
    ("GET", f"/api/v1/machines/parcel?version={HUGE}", None, "query.version"),
    ("GET", f"/api/v1/entities/parcel/p-1?history_cursor={HUGE}", None, "query.history_cursor"),
    (
        "GET",
        f"/api/v1/entities/p-1/history?machine_name=parcel&before={HUGE}",
        None,
        "query.before",
    ),
    ("GET", f"/api/v1/observability/transitions?before={HUGE}", None, "query.before"),
    ("GET", f"/api/v1/observability/worker-events?cursor={HUGE}", None, "query.cursor"),
]


@pytest.mark.parametrize(("method", "url", "body", "path"), OUT_OF_RANGE)
def test_integers_beyond_a_bigint_are_422(
    api: TestClient, method: str, url: str, body: Any, path: str
) -> None:
    _refused(api.request(method, url, json=body), path)


@pytest.mark.parametrize(
    ("method", "url", "body"),
    [
        ("POST", "/api/v1/events/retry", {"ids": [BIGINT_MAX], "dry_run": True}),
        ("POST", "/api/v1/events/discard", {"ids": [0, BIGINT_MAX], "dry_run": True}),
        ("POST", "/api/v1/actions/retry", {"ids": [BIGINT_MAX], "dry_run": True}),
        ("POST", "/api/v1/actions/discard", {"ids": [BIGINT_MAX], "dry_run": True}),
        ("GET", f"/api/v1/events?cursor={BIGINT_MAX}&limit={BIGINT_MAX}", None),
        ("GET", f"/api/v1/transitions?after={BIGINT_MAX}", None),
        ("GET", f"/api/v1/actions?cursor={BIGINT_MAX}&event_id={BIGINT_MAX}", None),
        ("GET", f"/api/v1/audit?cursor={BIGINT_MAX}", None),
        ("GET", f"/api/v1/observability/transitions?before={BIGINT_MAX}", None),
    ],
)
def test_the_largest_bigint_is_accepted(api: TestClient, method: str, url: str, body: Any) -> None:
    response = api.request(method, url, json=body)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("/api/v1/actions?entity_id=a%00b", "query.entity_id"),
        ("/api/v1/actions?machine=%01", "query.machine"),
        ("/api/v1/events?entity_id=x%00", "query.entity_id"),
        ("/api/v1/events?error=%7F", "query.error"),
        ("/api/v1/transitions?entity_id=%00&machine=parcel", "query.entity_id"),
        ("/api/v1/audit?principal=%C2%85", "query.principal"),  # U+0085, a C1 control
        ("/api/v1/observability/worker-events?trigger=%00", "query.trigger"),
        ("/api/v1/observability/state-metrics?machine=%1B", "query.machine"),
        ("/api/v1/entities/parcel%00/p-1", "path.machine"),
        ("/api/v1/entities/p%00/state?machine_name=parcel", "path.entity_id"),
        ("/api/v1/machines/par%00cel", "path.name"),
        ("/api/v1/stats?anything=%00", "query.anything"),  # every route, every parameter
    ],
)
def test_control_characters_in_query_strings_and_paths_are_422(
    api: TestClient, url: str, path: str
) -> None:
    _refused(api.get(url), path)


def test_clean_text_filters_still_work(api: TestClient) -> None:
    assert api.get("/api/v1/actions?entity_id=caf%C3%A9%20%E2%9C%93").status_code == 200
    assert api.get("/api/v1/events?machine=parcel&error=timeout").status_code == 200


@pytest.mark.parametrize(
    ("url", "body", "path"),
    [
        ("/api/v1/events/retry", {"filter": {"machine": "a\x00"}}, "body.filter.machine"),
        ("/api/v1/events/discard", {"filter": {"error": "\x1b[31m"}}, "body.filter.error"),
        ("/api/v1/actions/retry", {"filter": {"entity_id": "\x05G"}}, "body.filter.entity_id"),
        ("/api/v1/api-keys", {"role": "viewer", "name": "a\x00b"}, "body.name"),
    ],
)
def test_control_characters_in_body_filters_and_names_are_422(
    api: TestClient, url: str, body: dict[str, Any], path: str
) -> None:
    _refused(api.post(url, json=body), path)


def test_a_lone_surrogate_in_a_body_filter_is_422(api: TestClient) -> None:
    raw = b'{"filter": {"machine": "a\\udc00"}}'
    response = api.post(
        "/api/v1/actions/discard", content=raw, headers={"content-type": "application/json"}
    )
    _refused(response, "body.filter.machine")


def test_a_definition_holding_nul_is_422_naming_the_field(api: TestClient) -> None:
    definition = parcel()
    definition["meta"]["description"] = "a\x00b"
    response = api.post("/api/v1/machines", json={"config": definition})
    assert response.status_code == 422, response.text
    assert response.json()["detail"].startswith("meta.description: ")
    assert api.get("/api/v1/machines/parcel").status_code == 404  # nothing stored
