"""``POST /api/v1/entities/{id}/create`` (and ``bulk/create``) through the real app, on
PostgreSQL and SQLite: the create enters the initial state as an event enters it — ``on_enter``
entries run only when their ``when:`` holds, effects are in the stored context, the actions
come back in ``action_results`` — and a ``when:`` that cannot be evaluated is a 422 problem
with the error a transition reports, with nothing stored."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.support.api_clients import client

pytestmark = pytest.mark.integration

E = "/api/v1/entities"
GREETER = "greeter"
BROKEN = "greeter_broken"
#: The API binds the built-in actions (`noop`, `trace`, `log`), as a worker started with --app.
APP = "pystator.builtins:builtin_registries"


def machine(name: str, on_enter: list[Any]) -> dict[str, Any]:
    """open (initial, ``on_enter``) --close--> closed --reopen--> open."""
    return {
        "meta": {"machine_name": name, "version": "1.0"},
        "states": [
            {"name": "open", "type": "initial", "on_enter": on_enter},
            {"name": "closed", "type": "stable"},
        ],
        "transitions": [
            {"trigger": "close", "source": "open", "dest": "closed"},
            {"trigger": "reopen", "source": "closed", "dest": "open"},
        ],
    }


GREETER_ENTER: list[Any] = [
    {"name": "noop", "when": {"field": "vip", "op": "eq", "value": True}},
    {"name": "trace", "when": "amount > 100"},
    {"set": {"stage": "opened"}},
    {"increment": "openings"},
    "log",
]
BROKEN_ENTER: list[Any] = [{"set": {"stage": "opened"}}, {"name": "log", "when": "amount / n > 1"}]
CONTEXT = {"vip": True, "amount": 5}
STORED = {**CONTEXT, "stage": "opened", "openings": 1}


@pytest.fixture(params=["postgresql", "sqlite"])
def api(request: pytest.FixtureRequest) -> Iterator[TestClient]:
    name = "pg_migrated_url" if request.param == "postgresql" else "sqlite_migrated_url"
    with client(str(request.getfixturevalue(name)), api_max_batch=5, app=APP) as test_client:
        for config in (machine(GREETER, GREETER_ENTER), machine(BROKEN, BROKEN_ENTER)):
            response = test_client.post("/api/v1/machines", json={"config": config})
            assert response.status_code == 201, response.text
        yield test_client


def _create(api: TestClient, entity: str, context: dict[str, Any], name: str = GREETER) -> Any:
    return api.post(f"{E}/{entity}/create", json={"machine_name": name, "context": context})


def _ran(body: dict[str, Any]) -> list[tuple[str, str]]:
    return [(r["name"], r["status"]) for r in body["action_results"]]


def _in_closed(api: TestClient, entity: str, context: dict[str, Any], name: str = GREETER) -> None:
    """An entity placed in `closed` with ``context`` (an import runs no action)."""
    body = {"machine_name": name, "state": "closed", "context": context}
    response = api.post(f"{E}/{entity}/import", json=body)
    assert response.status_code == 201, response.text


def test_create_answers_the_stored_context_and_the_actions_it_ran(api: TestClient) -> None:
    created = _create(api, "c1", CONTEXT)
    assert created.status_code == 201, created.text
    body = created.json()
    assert (body["state"], body["version"], body["context"]) == ("open", 1, STORED)
    assert _ran(body) == [("noop", "ok"), ("log", "ok")]
    assert body["action_results"][0] == {
        "name": "noop",
        "status": "ok",
        "attempts": 1,
        "error": None,
    }
    snapshot = api.get(f"{E}/c1/snapshot", params={"machine_name": GREETER}).json()
    assert snapshot["context"] == STORED
    [row] = api.get(f"{E}/c1/history", params={"machine_name": GREETER}).json()["items"]
    assert (row["trigger"], row["actions"]) == ("__entity_created__", ["noop", "log"])

    other = _create(api, "c2", {"vip": False, "amount": 500}).json()
    assert _ran(other) == [("trace", "ok"), ("log", "ok")]


def test_a_create_and_a_transition_into_the_same_state_agree(api: TestClient) -> None:
    created = _create(api, "by-create", CONTEXT).json()
    _in_closed(api, "by-event", CONTEXT)
    sent = api.post(f"{E}/by-event/events", json={"machine_name": GREETER, "trigger": "reopen"})
    assert sent.status_code == 200, sent.text
    event = sent.json()
    assert event["success"] is True, event["error_detail"]
    assert event["action_results"] == created["action_results"]
    assert event["context"] == created["context"] == STORED


def test_a_when_that_cannot_be_evaluated_is_a_422_and_stores_nothing(api: TestClient) -> None:
    refused = _create(api, "b1", {"amount": 1, "n": 0}, BROKEN)
    assert refused.status_code == 422, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    problem = refused.json()
    assert problem["code"] == "GUARD_FAILED"
    assert "division by zero" in problem["detail"]
    assert api.get(f"{E}/b1/snapshot", params={"machine_name": BROKEN}).status_code == 404

    # the transition into the same state reports the same error (200, success false)
    _in_closed(api, "b2", {"amount": 1, "n": 0}, BROKEN)
    sent = api.post(f"{E}/b2/events", json={"machine_name": BROKEN, "trigger": "reopen"}).json()
    assert sent["success"] is False
    assert (sent["error_detail"]["code"], sent["error_detail"]["message"]) == (
        problem["code"],
        problem["detail"],
    )

    bulk = api.post(
        f"{E}/bulk/create",
        json={
            "machine_name": BROKEN,
            "items": [
                {"entity_id": "b3", "context": {"amount": 1, "n": 0}},
                {"entity_id": "b4", "context": {"amount": 5, "n": 1}},
            ],
        },
    )
    assert bulk.status_code == 200, bulk.text
    failed, made = bulk.json()["items"]
    assert (failed["created"], failed["error_detail"]["code"]) == (False, "GUARD_FAILED")
    assert failed["action_results"] == []
    assert (made["created"], made["state"], _ran(made)) == (True, "open", [("log", "ok")])
    assert api.get(f"{E}/b3/snapshot", params={"machine_name": BROKEN}).status_code == 404
    snapshot = api.get(f"{E}/b4/snapshot", params={"machine_name": BROKEN}).json()
    assert snapshot["context"] == {"amount": 5, "n": 1, "stage": "opened"}
