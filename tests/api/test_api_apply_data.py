"""``POST /api/v1/entities/{entity_id}/apply-data`` through the real app, on PostgreSQL and
SQLite: queued as a ``worker_events`` row of kind ``apply_data``, applied by a processor in
order with named events, its route on ``GET /api/v1/events/{id}``; clear 4xx for bad input."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from tests.support.api_clients import client, drain

pytestmark = pytest.mark.integration

E = "/api/v1/entities"
MACHINE = "order_routing"
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "order_routing.yaml"


@pytest.fixture(params=["postgresql", "sqlite"])
def db_url(request: pytest.FixtureRequest) -> str:
    name = "pg_migrated_url" if request.param == "postgresql" else "sqlite_migrated_url"
    return str(request.getfixturevalue(name))


@pytest.fixture
def api(db_url: str) -> Iterator[TestClient]:
    with client(db_url) as test_client:
        config = yaml.safe_load(EXAMPLE.read_text())
        response = test_client.post("/api/v1/machines", json={"config": config})
        assert response.status_code == 201, response.text
        yield test_client


def _apply(api: TestClient, entity: str, data: Any, **extra: Any) -> Any:
    body = {"machine_name": MACHINE, "data": data, **extra}
    return api.post(f"{E}/{entity}/apply-data", json=body)


def test_queued_updates_route_in_order_with_named_events(api: TestClient, db_url: str) -> None:
    created = api.post(f"{E}/o-1/create", json={"machine_name": MACHINE, "context": {}})
    assert created.status_code == 201, created.text
    partial = _apply(api, "o-1", {"filled_qty": 40})
    assert partial.status_code == 201, partial.text
    assert partial.json()["duplicate"] is False
    event = api.post(
        "/api/v1/events",
        json={"machine": MACHINE, "entity_id": "o-1", "trigger": "cancel"},
    )
    assert event.status_code == 201
    late = _apply(api, "o-1", {"filled_qty": 100, "settled": True})
    assert drain(db_url) == 3

    first = api.get(partial.json()["status_url"]).json()
    assert (first["status"], first["kind"]) == ("completed", "apply_data")
    assert first["outcome"]["apply_data"]["route"] == "moved"
    assert first["outcome"]["apply_data"]["trigger"] == "fill_partial"
    last = api.get(f"/api/v1/events/{late.json()['event_id']}").json()
    assert last["outcome"]["apply_data"]["route"] == "no_transition"  # cancelled is terminal
    snapshot = api.get(f"{E}/o-1/snapshot", params={"machine_name": MACHINE}).json()
    assert snapshot["state"] == "cancelled"
    assert snapshot["context"] == {"filled_qty": 100, "settled": True}


def test_repeated_idempotency_key_returns_the_first_event(api: TestClient) -> None:
    api.post(f"{E}/o-2/create", json={"machine_name": MACHINE})
    first = _apply(api, "o-2", {"filled_qty": 1}, idempotency_key="k")
    again = api.post(
        f"{E}/o-2/apply-data",
        json={"machine_name": MACHINE, "data": {"filled_qty": 1}},
        headers={"Idempotency-Key": "k"},
    )
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == {**first.json(), "duplicate": True}
    other = _apply(api, "o-2", {"filled_qty": 2}, idempotency_key="k")
    assert other.status_code == 409
    assert other.headers["content-type"].startswith("application/problem+json")


def test_bad_requests_are_clear_4xx(api: TestClient) -> None:
    missing = _apply(api, "ghost", {"filled_qty": 1})
    assert missing.status_code == 404, missing.text
    assert missing.headers["content-type"].startswith("application/problem+json")
    api.post(f"{E}/o-3/create", json={"machine_name": MACHINE})
    for body, status in (
        ({"machine_name": MACHINE, "data": [1, 2]}, 422),
        ({"machine_name": MACHINE}, 422),
        ({"machine_name": "nope", "data": {}}, None),
        ({"machine_name": MACHINE, "data": {}, "max_attempts": 0}, 422),
        ({"machine_name": MACHINE, "data": {"x": "\u0000" * 3, "y": {"z": 1}}}, None),
    ):
        response = api.post(f"{E}/o-3/apply-data", json=body)
        assert 400 <= response.status_code < 500 or response.status_code in (200, 201), (
            body,
            response.text,
        )
        if status is not None:
            assert response.status_code == status, (body, response.text)
        assert response.status_code != 500
    nul = api.post(f"{E}/bad%00id/apply-data", json={"machine_name": MACHINE, "data": {}})
    assert nul.status_code == 422
