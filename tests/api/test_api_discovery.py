"""The discovery routes through the real app on PostgreSQL and SQLite: observations (one, a batch,
raw records classified by a machine's when rules, bad items counted, the batch limit), preview
and build, candidates and drafts, the diff against the active machine, registering a candidate
(never current), the discovery settings routes, and the audit rows."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.discovery.test_when_rules import SENSOR
from tests.support.api_clients import MACHINE, client, parcel

pytestmark = pytest.mark.integration

OBS = "/api/v1/discovery/observations"
D = "/api/v1/discovery"


@pytest.fixture(params=["postgresql", "sqlite"])
def api(request: pytest.FixtureRequest) -> Iterator[TestClient]:
    name = "pg_migrated_url" if request.param == "postgresql" else "sqlite_migrated_url"
    with client(str(request.getfixturevalue(name)), api_max_batch=50) as test_client:
        yield test_client


def walk(entity: str, states: list[str], minute0: int = 0) -> list[dict[str, Any]]:
    """``entity`` seen in ``states``, one a minute."""
    return [
        {
            "entity_id": entity,
            "state": state,
            "observed_at": f"2026-03-01T10:{minute0 + i:02d}:00+00:00",
        }
        for i, state in enumerate(states)
    ]


def feed(api: TestClient) -> None:
    """Parcels: 5 shipped and delivered, 2 of them then back to created (parcel does not allow
    that); nobody goes through 'held'."""
    items: list[dict[str, Any]] = []
    for n in range(3):
        items += walk(f"p{n}", ["created", "shipped", "delivered"])
    items += walk("p3", ["created", "shipped", "delivered", "created"])
    items += walk("p4", ["created", "shipped", "delivered", "created"])
    answer = api.post(OBS, json={"machine_name": MACHINE, "observations": items})
    assert answer.status_code == 200, answer.text
    assert answer.json()["accepted"] == len(items)


def test_observations_one_batch_and_bad_items(api: TestClient) -> None:
    one = api.post(OBS, json={"machine_name": MACHINE, **walk("x1", ["created"])[0]})
    assert one.status_code == 200 and one.json()["accepted"] == 1
    bad_one = api.post(OBS, json={"machine_name": MACHINE, "entity_id": "x2", "state": "no such"})
    assert bad_one.status_code == 422
    assert bad_one.headers["content-type"] == "application/problem+json"
    assert "state name" in bad_one.json()["detail"]
    batch = [
        {**walk("x1", ["shipped"], 1)[0], "source_event_id": "e-1"},
        {**walk("x1", ["shipped"], 1)[0], "source_event_id": "e-1"},  # re-sent: a duplicate
        "not an object",
        {"entity_id": "x3"},  # no state
        {"entity_id": "x3", "state": "created", "observed_at": "yesterday"},
        {"entity_id": "x3", "state": "created", "colour": "red"},
        {"entity_id": "x3", "state": "created", "machine_name": "other"},
    ]
    answer = api.post(OBS, json={"machine_name": MACHINE, "observations": batch})
    assert answer.status_code == 200
    body = answer.json()
    assert (body["total"], body["accepted"], body["duplicates"], body["errors"]) == (7, 1, 1, 5)
    reasons = {e["index"]: e["reason"] for e in body["error_details"]}
    assert sorted(reasons) == [2, 3, 4, 5, 6]
    assert "JSON object" in reasons[2] and "state is missing" in reasons[3]
    assert "ISO 8601" in reasons[4] and "colour" in reasons[5] and "differs" in reasons[6]
    too_many = api.post(OBS, json={"observations": walk("x9", ["created"] * 51)})
    assert too_many.status_code == 422 and "PYSTATOR_API_MAX_BATCH" in too_many.json()["detail"]
    assert api.post(OBS, json={}).status_code == 422
    assert api.post(OBS, json=[1, 2]).status_code == 422
    audit = api.get("/api/v1/audit").json()["items"]
    assert {a["route"] for a in audit} == {OBS}


def test_records_are_classified_by_the_machines_when_rules(api: TestClient) -> None:
    assert api.post("/api/v1/machines", json={"config": SENSOR}).status_code == 201
    records = [
        {"sensor_id": "s1", "temperature": 50, "recorded_at": "2026-03-01T10:00:00"},
        {"sensor_id": "s1", "temperature": 150, "pressure": 10, "recorded_at": 1772359260},
        {"sensor_id": "s1", "status": "off", "recorded_at": "2026-03-01T10:02:00"},
        {"temperature": 50},  # no entity id
    ]
    answer = api.post(OBS, json={"machine_name": "sensor_fsm", "records": records})
    body = answer.json()
    assert (body["total"], body["classified"], body["accepted"], body["errors"]) == (4, 3, 3, 1)
    assert "entity id" in body["error_details"][0]["reason"]
    missing = api.post(OBS, json={"machine_name": "nope", "records": records})
    assert missing.status_code == 404
    built = api.post(
        f"{D}/candidates/build",
        json={"machine_name": "sensor_fsm", "min_edge_count": 1, "min_confidence": 0},
    )
    assert built.status_code == 201, built.text
    edges = [(e["source_state"], e["destination_state"]) for e in built.json()["edges"]]
    assert edges == [("normal", "overheating"), ("overheating", "shutdown")]


def test_preview_build_read_diff_and_register(api: TestClient) -> None:
    assert api.post("/api/v1/machines", json={"config": parcel()}).status_code == 201
    feed(api)
    scope = {"machine_name": MACHINE, "min_edge_count": 2, "min_confidence": 0.1}
    preview = api.post(f"{D}/candidates/preview", json=scope)
    assert preview.status_code == 200
    assert (preview.json()["kept"], preview.json()["dropped"]) == (3, 0)
    assert api.get(f"{D}/candidates/{MACHINE}/latest").status_code == 404  # nothing stored
    built = api.post(f"{D}/candidates/build", json=scope)
    assert built.status_code == 201
    candidate = built.json()
    assert (candidate["version"], candidate["initial_state"]) == (1, "created")
    counts = {(e["source_state"], e["destination_state"]): e["count"] for e in candidate["edges"]}
    assert counts == {
        ("created", "shipped"): 5,
        ("shipped", "delivered"): 5,
        ("delivered", "created"): 2,
    }
    assert {e["confidence"] for e in candidate["edges"]} == {1.0}
    latest = api.get(f"{D}/candidates/{MACHINE}/latest").json()
    assert latest["config"] == candidate["config"] and latest["version"] == 1
    assert api.get(f"{D}/candidates/{MACHINE}/1").json()["edges"] == candidate["edges"]
    assert api.get(f"{D}/candidates/{MACHINE}/2").status_code == 404

    diff = api.get(f"{D}/candidates/{MACHINE}/diff").json()
    assert [(e["source_state"], e["destination_state"]) for e in diff["unexpected"]] == [
        ("delivered", "created")
    ]
    assert [(e["source_state"], e["destination_state"]) for e in diff["unused"]] == [
        ("held", "delivered")
    ]
    assert diff["active_version"] == 1

    # from the fleet's history instead: the parcel machine applied nothing yet
    empty = api.post(f"{D}/candidates/build", json={**scope, "source": "history"})
    assert empty.status_code == 422 and "no observations" in empty.json()["detail"]
    assert api.post(f"{D}/candidates/build", json={**scope, "source": "csv"}).status_code == 422

    registered = api.post(f"{D}/candidates/{MACHINE}/1/register")
    assert registered.status_code == 201
    assert registered.json()["registry_version"] == 2 and registered.json()["current_version"] == 1
    again = api.post(f"{D}/candidates/{MACHINE}/1/register")
    assert again.status_code == 200 and again.json()["registry_version"] == 2
    machine = api.get(f"/api/v1/machines/{MACHINE}").json()
    assert machine["current_version"] == 1  # registering never makes the candidate active

    listing = api.get(f"{D}/candidates/{MACHINE}").json()
    assert [c["version"] for c in listing["built_candidates"]] == [1]
    assert listing["drafts"] == []
    assert api.get(f"{D}/candidates/bad%00name").status_code == 422


def test_drafts_crud_preview_and_build(api: TestClient) -> None:
    feed(api)
    drafts = f"{D}/machines/{MACHINE}/drafts"
    created = api.post(drafts, json={"title": "first", "min_edge_count": 1})
    assert created.status_code == 201
    draft = created.json()
    assert (draft["id"], draft["mode"], draft["min_edge_count"]) == (1, "inference", 1)
    empty = api.post(f"{drafts}/1/preview")
    assert empty.status_code == 422 and "selects no entities" in empty.json()["detail"]
    patched = api.patch(f"{drafts}/1", json={"entity_ids": ["p3", "p0"], "min_confidence": 0.2})
    assert patched.status_code == 200
    assert patched.json()["selected_entity_ids"] == ["p3", "p0"]
    assert (patched.json()["min_edge_count"], patched.json()["min_confidence"]) == (1, 0.2)
    preview = api.post(f"{drafts}/1/preview").json()
    assert {(e["source_state"], e["destination_state"], e["count"]) for e in preview["edges"]} == {
        ("created", "shipped", 2),
        ("shipped", "delivered", 2),
        ("delivered", "created", 1),
    }
    manual = api.patch(
        f"{drafts}/1", json={"mode": "manual", "manual_edge_selection": [["created", "shipped"]]}
    )
    assert manual.json()["mode"] == "manual"
    built = api.post(f"{drafts}/1/build")
    assert built.status_code == 201
    assert [e["kept"] for e in built.json()["edges"]] == [True, False, False]
    assert api.get(f"{drafts}/1").json()["last_built_version"] == built.json()["version"]
    assert api.get(f"{D}/machines/other/drafts/1").status_code == 404  # another machine's
    assert api.patch(f"{drafts}/1", json={"mode": "guess"}).status_code == 422
    assert api.post(drafts, json={"manual_edge_selection": [["a"]]}).status_code == 422
    assert api.delete(f"{drafts}/1").status_code == 204
    assert api.delete(f"{drafts}/1").status_code == 404
    listing = api.get(f"{D}/candidates/{MACHINE}").json()
    assert listing["drafts"] == [] and len(listing["built_candidates"]) == 1
    routes = [a["route"] for a in api.get("/api/v1/audit").json()["items"]]
    assert routes.count(drafts + "/{draft_id}") == 0
    assert f"{D}/machines/{{machine_name}}/drafts/{{draft_id}}" in routes


def test_discovery_settings_routes(api: TestClient, tmp_path: Any) -> None:
    config = api.get("/api/v1/settings/discovery-config").json()
    assert config["dedicated_database"] is False
    assert config["backend"] in ("postgresql", "sqlite")
    assert (config["min_edge_count"], config["min_confidence"]) == (2, 0.05)
    tested = api.post("/api/v1/settings/test-discovery-database").json()
    assert (tested["ok"], tested["migrated"]) == (True, True)
    missing = tmp_path / "absent.db"
    absent = api.post(
        "/api/v1/settings/test-discovery-database",
        json={"database_url": f"sqlite:///{missing}"},
    ).json()
    assert absent["ok"] is False and not missing.exists()
    down = api.post(
        "/api/v1/settings/test-discovery-database",
        json={"database_url": "postgresql://u:secret@127.0.0.1:1/none"},
    ).json()
    assert down["ok"] is False and "secret" not in str(down) and "***" in down["database_url"]
    odd = api.post("/api/v1/settings/test-discovery-database", json={"database_url": "nope"})
    assert odd.status_code == 200 and odd.json()["ok"] is False
