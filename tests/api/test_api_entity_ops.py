"""One entity over HTTP through the real app, on PostgreSQL and SQLite: create, synchronous
events (``action_results``, ``error_detail``), dry-run (nothing stored), reads, export/import,
purge/archive; bulk create/events with per-item errors; the observability feeds, the catalog
and the settings report."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from itertools import pairwise
from typing import Any

import pytest
from fastapi.testclient import TestClient

from pystator.api.routes.settings_routes import report as report_of
from pystator.config.settings import Settings
from tests.support.api_clients import MACHINE, client, parcel

pytestmark = pytest.mark.integration

E = "/api/v1/entities"
TIMED = "timed"
#: The API binds the built-in guards and actions (as a worker started with --app would).
APP = "pystator.builtins:builtin_registries"


def timed() -> dict[str, Any]:
    """created --go--> waiting (built-in actions, an ``after:`` timer back to ``created``)."""
    return {
        "meta": {"machine_name": TIMED, "version": "1.0"},
        "states": [
            {"name": "created", "type": "initial"},
            {"name": "waiting", "type": "stable"},
            {"name": "done", "type": "terminal"},
        ],
        "transitions": [
            {
                "trigger": "go",
                "source": "created",
                "dest": "waiting",
                "actions": [{"name": "set_context", "params": {"values": {"went": True}}}, "log"],
            },
            {"trigger": "expire", "source": "waiting", "dest": "created", "after": "1h"},
            {"trigger": "finish", "source": "waiting", "dest": "done"},
            {
                "trigger": "break",
                "source": "created",
                "dest": "done",
                "actions": ["copy_key", "log"],
            },
            {
                "trigger": "checked",
                "source": "created",
                "dest": "done",
                "guards": [{"name": "key_present", "params": {"key": "approved"}}],
            },
        ],
    }


@pytest.fixture(params=["postgresql", "sqlite"])
def db_url(request: pytest.FixtureRequest) -> str:
    name = "pg_migrated_url" if request.param == "postgresql" else "sqlite_migrated_url"
    return str(request.getfixturevalue(name))


@pytest.fixture
def api(db_url: str) -> Iterator[TestClient]:
    with client(db_url, api_max_batch=5, app=APP) as test_client:
        for config in (parcel(), timed()):
            response = test_client.post("/api/v1/machines", json={"config": config})
            assert response.status_code == 201, response.text
        yield test_client


def _create(api: TestClient, entity: str, machine: str = TIMED, **context: Any) -> Any:
    return api.post(f"{E}/{entity}/create", json={"machine_name": machine, "context": context})


def _snapshot(api: TestClient, entity: str, machine: str = TIMED) -> Any:
    return api.get(f"{E}/{entity}/snapshot", params={"machine_name": machine})


def test_create_then_event_runs_the_actions_and_reports_them(api: TestClient) -> None:
    created = _create(api, "t1", n=1)
    assert created.status_code == 201, created.text
    assert (created.json()["state"], created.json()["version"]) == ("created", 1)
    assert _create(api, "t1").status_code == 409

    sent = api.post(f"{E}/t1/events", json={"machine_name": TIMED, "trigger": "go"})
    assert sent.status_code == 200, sent.text
    body = sent.json()
    assert body["success"] is True, body["error_detail"]
    assert (body["source_state"], body["target_state"], body["version"]) == (
        "created",
        "waiting",
        2,
    )
    assert [(r["name"], r["status"]) for r in body["action_results"]] == [
        ("set_context", "ok"),
        ("log", "ok"),
    ]
    assert body["error_detail"] is None
    state = api.get(f"{E}/t1/state", params={"machine_name": TIMED}).json()
    assert (state["state"], state["version"]) == ("waiting", 2)
    timeline = api.get(f"{E}/t1/timeline", params={"machine_name": TIMED}).json()
    kinds = [(i["kind"], i["trigger"]) for i in timeline["items"]]
    assert kinds == [
        ("transition", "__entity_created__"),
        ("transition", "go"),
        ("timer", "expire"),
    ]
    history = api.get(f"{E}/t1/history", params={"machine_name": TIMED, "limit": 1}).json()
    assert [h["trigger"] for h in history["items"]] == ["go"]
    older = api.get(
        f"{E}/t1/history",
        params={"machine_name": TIMED, "limit": 1, "before": history["next_cursor"]},
    ).json()
    assert [h["trigger"] for h in older["items"]] == ["__entity_created__"]

    left = api.post(f"{E}/t1/events", json={"machine_name": TIMED, "trigger": "finish"}).json()
    assert left["success"] is True
    timeline = api.get(f"{E}/t1/timeline", params={"machine_name": TIMED}).json()
    assert [i["kind"] for i in timeline["items"]] == ["transition"] * 3  # timer cancelled


def test_a_refused_event_is_200_with_a_structured_error_detail(api: TestClient) -> None:
    _create(api, "t2")
    refused = api.post(f"{E}/t2/events", json={"machine_name": TIMED, "trigger": "finish"})
    assert refused.status_code == 200
    body = refused.json()
    assert body["success"] is False
    assert set(body["error_detail"]) == {"code", "type", "message", "details"}
    assert body["error_detail"]["code"] == "INVALID_TRIGGER"
    guarded = api.post(f"{E}/t2/events", json={"machine_name": TIMED, "trigger": "checked"})
    assert guarded.json()["error_detail"]["code"] == "GUARD_REJECTED"
    # an action nobody registered: refused before anything is stored
    _create(api, "p1", MACHINE)
    unregistered = api.post(f"{E}/p1/events", json={"machine_name": MACHINE, "trigger": "ship"})
    assert unregistered.status_code == 200
    assert unregistered.json()["error_detail"]["code"] == "ACTION_NOT_FOUND"
    assert _snapshot(api, "p1", MACHINE).json()["version"] == 1
    assert _snapshot(api, "t2").json()["version"] == 1
    missing = api.post(f"{E}/nope/events", json={"machine_name": TIMED, "trigger": "go"})
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    unknown = api.post(f"{E}/t2/events", json={"machine_name": "ghost", "trigger": "go"})
    assert unknown.status_code == 422
    # a failing action does not undo the committed transition, nor stop the next action
    broken = api.post(f"{E}/t2/events", json={"machine_name": TIMED, "trigger": "break"}).json()
    assert (broken["success"], broken["target_state"], broken["version"]) == (True, "done", 2)
    assert [(r["name"], r["status"]) for r in broken["action_results"]] == [
        ("copy_key", "failed"),
        ("log", "ok"),
    ]
    assert "needs params.from" in broken["action_results"][0]["error"]


#: Requests carrying a control character in a path, query or body name.
CONTROL_CHARACTERS: list[tuple[str, str, dict[str, str] | None, dict[str, str] | None]] = [
    ("GET", "/t%00/state", {"machine_name": TIMED}, None),
    ("GET", "/t/history", {"machine_name": "ti\x00med"}, None),
    ("POST", "/t/events", None, {"machine_name": "ti\x00med", "trigger": "go"}),
    ("POST", "/t/purge", None, {"machine_name": "ti\x00med"}),
    ("GET", "/../observability/transitions", {"entity_id": "a\x00"}, None),
]


def test_control_characters_are_refused_at_the_door(api: TestClient) -> None:
    for method, path, params, body in CONTROL_CHARACTERS:
        response = api.request(method, E + path, params=params, json=body)
        assert response.status_code == 422, (path, response.text)
        assert response.json()["errors"][0]["rule"] == "control_character"


def test_dry_run_has_no_effect_on_the_store(api: TestClient) -> None:
    _create(api, "d1", n=1)
    before = _snapshot(api, "d1").json()
    history = api.get(f"{E}/d1/history", params={"machine_name": TIMED}).json()
    dry = api.post(
        f"{E}/d1/dry-run", json={"machine_name": TIMED, "trigger": "go", "context": {"x": 2}}
    )
    assert dry.status_code == 200, dry.text
    body = dry.json()
    assert body["would_succeed"] is True
    assert body["target_state"] == "waiting"
    assert body["actions_that_would_execute"] == ["set_context", "log"]
    assert body["timers_that_would_arm"] == ["expire"]
    refused = api.post(f"{E}/d1/dry-run", json={"machine_name": TIMED, "trigger": "finish"})
    assert refused.json()["would_succeed"] is False
    assert refused.json()["error_detail"]["code"] == "INVALID_TRIGGER"
    assert _snapshot(api, "d1").json() == before
    assert api.get(f"{E}/d1/history", params={"machine_name": TIMED}).json() == history
    timeline = api.get(f"{E}/d1/timeline", params={"machine_name": TIMED}).json()
    assert [i["kind"] for i in timeline["items"]] == ["transition"]  # no timer armed
    assert api.get("/api/v1/audit").json()["items"][0]["route"] != f"{E}/{{entity_id}}/dry-run"


def test_export_import_round_trip_and_purge_archive(api: TestClient) -> None:
    _create(api, "x1", n=1)
    api.post(f"{E}/x1/events", json={"machine_name": TIMED, "trigger": "go"})
    document = api.get(f"{E}/x1/export", params={"machine_name": TIMED}).json()
    assert document["format"] == "pystator.entity/1"
    assert [h["trigger"] for h in document["history"]] == ["__entity_created__", "go"]
    assert api.post(f"{E}/x1/import", json=document).status_code == 409
    api.post(f"{E}/x1/events", json={"machine_name": TIMED, "trigger": "finish"})

    archived = api.post(f"{E}/x1/archive", json={"machine_name": TIMED})
    assert archived.status_code == 200, archived.text
    assert archived.json()["deleted"]["entity"] == 1
    assert _snapshot(api, "x1").status_code == 404
    again = api.post(f"{E}/x1/archive", json={"machine_name": TIMED})  # archived: nothing left
    assert again.status_code == 404
    assert again.headers["content-type"].startswith("application/problem+json")
    restored = api.post(f"{E}/x1/import", json=archived.json()["document"])
    assert restored.status_code == 201, restored.text
    assert (restored.json()["state"], restored.json()["version"]) == ("done", 3)
    again = api.get(f"{E}/x1/export", params={"machine_name": TIMED}).json()
    assert again["history"] == archived.json()["document"]["history"]

    bad = dict(document, state="nowhere")
    refused = api.post(f"{E}/x2/import", json=bad)
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["path"] == "state"

    for field, broken in (
        ("history[0].payload", {"history": [dict(document["history"][0], payload={"a": "\x00"})]}),
        ("history[0].trigger", {"history": [dict(document["history"][0], trigger="a\x00")]}),
        ("entries", {"entries": {"waiting\x00": 1}}),
        ("entries", {"entries": {"waiting": 9}}),
    ):
        refused = api.post(f"{E}/x3/import", json=dict(document, **broken))
        assert refused.status_code == 422, (field, refused.text)
        assert refused.json()["errors"][0]["path"].startswith(field)
    assert api.get(f"{E}/x3/state", params={"machine_name": TIMED}).status_code == 404

    purged = api.post(f"{E}/x1/purge", json={"machine_name": TIMED})
    assert purged.status_code == 200
    assert purged.json()["deleted"] == {"entity": 1, "history": 3, "timers": 0}
    assert api.post(f"{E}/x1/purge", json={"machine_name": TIMED}).status_code == 404

    # an entity with queued work is not purged
    _create(api, "q1")
    queued = api.post("/api/v1/events", json={"machine": TIMED, "entity_id": "q1", "trigger": "go"})
    assert queued.status_code == 201
    refused = api.post(f"{E}/q1/purge", json={"machine_name": TIMED})
    assert refused.status_code == 409
    assert refused.json()["pending_events"] == 1


def test_bulk_create_and_events_report_each_item(api: TestClient) -> None:
    _create(api, "b0")
    created = api.post(
        f"{E}/bulk/create",
        json={
            "machine_name": TIMED,
            "items": [
                {"entity_id": "b1"},
                {"entity_id": "b0"},
                {"entity_id": ""},
                {"entity_id": "b2", "context": {"k": "\x00"}},
                {"entity_id": "b3", "context": {"k": 1}},
            ],
        },
    )
    assert created.status_code == 200, created.text
    body = created.json()
    assert [i["created"] for i in body["items"]] == [True, False, False, False, True]
    assert (body["created"], body["failed"]) == (2, 3)
    assert body["items"][1]["error_detail"]["code"] == "CONFLICT"
    assert body["items"][2]["error_detail"]["code"] == "INVALID_EVENT"
    assert body["items"][3]["error_detail"]["details"]["rule"] == "nul"

    sent = api.post(
        f"{E}/bulk/events",
        json={"machine_name": TIMED, "trigger": "go", "entity_ids": ["b1", "missing", "b3"]},
    )
    assert sent.status_code == 200, sent.text
    items = sent.json()["items"]
    assert [i["success"] for i in items] == [True, False, True]
    assert items[1]["error_detail"]["code"] == "ENTITY_NOT_FOUND"
    assert items[0]["action_results"][0]["name"] == "set_context"
    assert (sent.json()["succeeded"], sent.json()["failed"]) == (2, 1)

    too_many = api.post(
        f"{E}/bulk/events",
        json={"machine_name": TIMED, "trigger": "go", "entity_ids": [f"e{i}" for i in range(6)]},
    )
    assert too_many.status_code == 422
    assert too_many.json()["errors"][0]["path"] == "entity_ids"


def test_observability_feeds_catalog_and_settings(api: TestClient) -> None:
    for entity in ("o1", "o2"):
        _create(api, entity)
    api.post(f"{E}/o1/events", json={"machine_name": TIMED, "trigger": "go"})
    api.post("/api/v1/events", json={"machine": TIMED, "entity_id": "o2", "trigger": "go"})

    summary = api.get("/api/v1/observability/summary").json()
    assert summary["entities"] == 2
    assert summary["entities_by_machine"] == {TIMED: 2}
    assert summary["transitions_in_window"] == 3
    assert summary["events"]["pending"] == 1

    page = api.get("/api/v1/observability/transitions", params={"limit": 2}).json()
    assert [t["trigger"] for t in page["items"]] == ["go", "__entity_created__"]
    rest = api.get(
        "/api/v1/observability/transitions", params={"before": page["next_cursor"]}
    ).json()
    assert [t["trigger"] for t in rest["items"]] == ["__entity_created__"]

    events = api.get("/api/v1/observability/worker-events", params={"status": "pending"}).json()
    assert [e["entity_id"] for e in events["items"]] == ["o2"]

    metrics = api.get("/api/v1/observability/state-metrics", params={"machine": TIMED}).json()
    states = {s["state"]: (s["entities"], s["entered_in_window"]) for s in metrics["states"]}
    assert states == {"created": (1, 2), "waiting": (1, 1)}
    assert {(e["from"], e["to"], e["count"]) for e in metrics["edges"]} == {
        (None, "created", 2),
        ("created", "waiting", 1),
    }
    too_long = api.get("/api/v1/observability/summary", params={"window_seconds": 10**12})
    assert too_long.status_code == 422

    # the catalog and the settings report
    catalog = api.get("/api/v1/catalog/builtins").json()
    assert {"always", "key_present"} <= {g["name"] for g in catalog["guards"]}
    assert {"log", "set_context", "publish", "http"} <= {a["name"] for a in catalog["actions"]}
    assert {(s["kind"], s["name"]) for s in catalog["sinks"]} >= {("timer", "db")}
    report = api.get("/api/v1/settings").json()
    values = {s["name"]: s["value"] for s in report["settings"]}
    assert values["PYSTATOR_API_MAX_BATCH"] == "5"
    assert report["auth"]["configured"] is False
    secret = report_of(
        Settings(database_url="postgresql+psycopg://u:pw@db/x", api_jwt_secret="s" * 32),
        auth_configured=True,
    )
    assert secret["database"] == "postgresql+psycopg://u:***@db/x"
    assert "pw" not in str(secret) and "s" * 32 not in str(secret)


def test_concurrent_events_on_one_entity_lose_no_write(api: TestClient) -> None:
    """Requests racing on one entity: optimistic locking reloads and recomputes, so the
    history is one unbroken chain and every success is in it."""
    _create(api, "race")
    triggers = ["go", "expire"] * 6

    def send(trigger: str) -> dict[str, Any]:
        response = api.post(f"{E}/race/events", json={"machine_name": TIMED, "trigger": trigger})
        assert response.status_code == 200, response.text
        return dict(response.json())

    with ThreadPoolExecutor(max_workers=6) as pool:
        outcomes = list(pool.map(send, triggers))
    succeeded = [o for o in outcomes if o["success"]]
    rows = api.get(f"{E}/race/history", params={"machine_name": TIMED, "limit": 50}).json()
    chain = list(reversed(rows["items"]))
    assert [h["version"] for h in chain] == list(range(1, len(succeeded) + 2))
    for before, after in pairwise(chain):
        assert after["from"] == before["to"]
    assert sorted(o["version"] for o in succeeded) == list(range(2, len(succeeded) + 2))
