"""The fleet over HTTP through the real app: submit (201/200/409/422), batches, listings with
filters and cursors, one event, retry and discard by ids or filter with dry run and cap."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from tests.support.api_clients import MACHINE, client, drain, parcel, set_status

pytestmark = pytest.mark.integration


@pytest.fixture(params=["postgresql", "sqlite"])
def db_url(request: pytest.FixtureRequest) -> str:
    name = "pg_migrated_url" if request.param == "postgresql" else "sqlite_migrated_url"
    return str(request.getfixturevalue(name))


@pytest.fixture
def api(db_url: str) -> Iterator[TestClient]:
    with client(db_url) as test_client:
        assert test_client.post("/api/v1/machines", json={"config": parcel()}).status_code == 201
        yield test_client


def _event(entity: str = "p1", trigger: str = "ship", **extra: object) -> dict[str, object]:
    return {"machine": MACHINE, "entity_id": entity, "trigger": trigger, **extra}


def test_idempotency_contract_201_200_409(api: TestClient) -> None:
    first = api.post(
        "/api/v1/events", json=_event(context={"n": 1}), headers={"Idempotency-Key": "k1"}
    )
    assert first.status_code == 201
    assert first.json() == {"id": first.json()["id"], "duplicate": False}
    again = api.post("/api/v1/events", json=_event(idempotency_key="k1", context={"n": 1}))
    assert again.status_code == 200
    assert again.json() == {"id": first.json()["id"], "duplicate": True}
    other = api.post(
        "/api/v1/events", json=_event("p2", context={"n": 1}), headers={"Idempotency-Key": "k1"}
    )
    assert other.status_code == 409
    assert other.headers["content-type"] == "application/problem+json"
    assert other.json()["code"] == "IDEMPOTENCY_CONFLICT"
    assert other.json()["event_id"] == first.json()["id"]
    shown = api.get(f"/api/v1/events/{first.json()['id']}").json()
    assert shown["duplicate_count"] == 1
    mismatch = api.post(
        "/api/v1/events", json=_event(idempotency_key="a"), headers={"Idempotency-Key": "b"}
    )
    assert mismatch.status_code == 422
    assert mismatch.json()["errors"][0]["rule"] == "mismatch"


@pytest.mark.parametrize(
    ("body", "path", "rule"),
    [
        (_event(trigger="fly"), "trigger", "unknown"),
        (_event(machine="nope"), "machine", "unknown"),
        (_event(entity=""), "entity_id", "type"),
        (_event(context={"a": "\x00"}), "context.a", "nul"),
        (_event(max_attempts=0), "max_attempts", "range"),
        (_event(fires_at="1900-01-01T00:00:00Z"), "fires_at", "range"),
    ],
)
def test_the_door_refuses_with_422_naming_the_field(
    api: TestClient, body: dict[str, object], path: str, rule: str
) -> None:
    response = api.post("/api/v1/events", json=body)
    assert response.status_code == 422, response.text
    error = response.json()["errors"][0]
    assert (error["path"], error["rule"]) == (path, rule)
    assert api.get("/api/v1/events").json()["items"] == []


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({**_event(), "colour": "red"}, "body.colour"),
        (_event(max_attempts="5"), "body.max_attempts"),
        (_event(context=[1, 2]), "body.context"),
        ({"machine": MACHINE, "trigger": "ship"}, "body.entity_id"),
    ],
)
def test_unknown_fields_and_wrong_types_are_422(
    api: TestClient, body: dict[str, object], path: str
) -> None:
    response = api.post("/api/v1/events", json=body)
    assert response.status_code == 422
    assert response.json()["code"] == "VALIDATION_FAILED"
    assert path in [e["path"] for e in response.json()["errors"]]


def test_batches_are_all_or_nothing(api: TestClient) -> None:
    events = [_event(f"b{i}", idempotency_key=f"bk{i}") for i in range(5)]
    created = api.post("/api/v1/events/batch", json={"events": events})
    assert created.status_code == 201
    assert created.json()["created"] == 5
    repeated = api.post("/api/v1/events/batch", json={"events": events})
    assert repeated.status_code == 200
    assert [i["duplicate"] for i in repeated.json()["items"]] == [True] * 5
    bad = api.post(
        "/api/v1/events/batch", json={"events": [_event("c1"), _event("c2", trigger="x")]}
    )
    assert bad.status_code == 422
    conflicting = [_event("c3"), _event("other", idempotency_key="bk0")]
    assert api.post("/api/v1/events/batch", json={"events": conflicting}).status_code == 409
    assert api.get("/api/v1/events", params={"entity_id": "c1"}).json()["items"] == []
    assert api.get("/api/v1/events", params={"entity_id": "c3"}).json()["items"] == []


def test_batch_size_and_body_size_limits(db_url: str) -> None:
    with client(db_url, api_max_batch=2, api_max_body_bytes=2000) as api:
        api.post("/api/v1/machines", json={"config": parcel()})
        too_many = api.post(
            "/api/v1/events/batch", json={"events": [_event(f"e{i}") for i in range(3)]}
        )
        assert too_many.status_code == 422
        assert too_many.json()["errors"][0]["path"] == "events"
        huge = api.post("/api/v1/events", json=_event(context={"blob": "x" * 5000}))
        assert huge.status_code == 413
        assert huge.json()["status"] == 413
        chunked = api.post(
            "/api/v1/events",
            content=iter([b'{"machine": "parcel", ', b'"pad": "' + b"y" * 3000 + b'"}']),
            headers={"content-type": "application/json"},
        )
        assert chunked.status_code == 413


def test_listing_filters_and_keyset_pages(api: TestClient, db_url: str) -> None:
    ids = [
        api.post("/api/v1/events", json=_event(f"l{i}", idempotency_key=f"lk{i}")).json()["id"]
        for i in range(7)
    ]
    set_status(db_url, ids[:2], "dead", error="Connection Refused by carrier")
    seen: list[int] = []
    cursor = None
    while True:
        params: dict[str, object] = {"limit": 3, "machine": MACHINE}
        if cursor is not None:
            params["cursor"] = cursor
        page = api.get("/api/v1/events", params=params).json()
        seen += [e["id"] for e in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(ids, reverse=True)

    def listed(**params: object) -> list[int]:
        response = api.get("/api/v1/events", params=params)
        assert response.status_code == 200, response.text
        return [e["id"] for e in response.json()["items"]]

    assert listed(status="dead") == ids[1::-1]
    assert listed(error="connection refused") == ids[1::-1]
    assert listed(error="%") == []  # LIKE wildcards are literal
    assert listed(idempotency_key="lk3") == [ids[3]]
    assert listed(entity_id="l4", trigger="ship", origin="submit") == [ids[4]]
    assert listed(created_after="2000-01-01T00:00:00Z", status="pending") == ids[:1:-1]
    assert listed(created_before="2000-01-01T00:00:00Z") == []
    assert api.get("/api/v1/events", params={"status": "bogus"}).status_code == 422
    assert api.get("/api/v1/events", params={"limit": 0}).status_code == 422
    capped = api.get("/api/v1/events", params={"limit": 100_000}).json()
    assert capped["limit"] == 500


def test_show_event_with_errors_and_404(api: TestClient, db_url: str) -> None:
    event_id = api.post("/api/v1/events", json=_event()).json()["id"]
    set_status(db_url, [event_id], "dead")
    shown = api.get(f"/api/v1/events/{event_id}").json()
    assert shown["status"] == "dead"
    assert shown["errors"][0]["message"] == "boom"
    assert shown["actions"] == []
    missing = api.get("/api/v1/events/987654")
    assert missing.status_code == 404
    assert missing.json()["code"] == "NOT_FOUND"
    assert api.get("/api/v1/events/abc").status_code == 422


def test_retry_and_discard_by_filter_with_dry_run_and_cap(api: TestClient, db_url: str) -> None:
    ids = [api.post("/api/v1/events", json=_event(f"r{i}")).json()["id"] for i in range(5)]
    set_status(db_url, ids, "dead")
    selection = {"filter": {"status": "dead", "machine": MACHINE}}
    dry = api.post("/api/v1/events/retry", json={**selection, "dry_run": True, "limit": 2}).json()
    assert dry == {
        "dry_run": True,
        "matched": 5,
        "selected": 2,
        "affected": None,
        "limit": 2,
        "entities": None,
    }
    assert len(api.get("/api/v1/events", params={"status": "dead"}).json()["items"]) == 5
    done = api.post("/api/v1/events/retry", json={**selection, "limit": 2}).json()
    assert (done["affected"], done["entities"]) == (2, 2)
    pending = api.get("/api/v1/events", params={"status": "pending"}).json()["items"]
    assert sorted(e["id"] for e in pending) == ids[:2]  # the oldest first
    assert all(e["attempts"] == 0 and e["errors"] for e in pending)  # old errors kept

    discarded = api.post("/api/v1/events/discard", json={"ids": [ids[2]], "dry_run": False}).json()
    assert discarded["affected"] == 1
    nothing = api.post("/api/v1/events/discard", json={})
    assert nothing.status_code == 422  # never "everything" by accident
    capped = api.post("/api/v1/events/discard", json={**selection, "limit": 10**9}).json()
    assert capped["limit"] == 10_000 and capped["affected"] == 2

    drain(db_url)
    states = {e["entity_id"]: e["status"] for e in api.get("/api/v1/events").json()["items"]}
    assert states == {
        "r0": "completed",
        "r1": "completed",
        "r2": "discarded",
        "r3": "discarded",
        "r4": "discarded",
    }

    audit = api.get("/api/v1/audit", params={"route": "/api/v1/events/retry"}).json()["items"]
    assert [(a["affected"], a["selection"].get("dry_run")) for a in audit] == [
        (2, False),
        (None, True),
    ]
    assert audit[0]["principal"] == "local" and audit[0]["selection"]["filter"]["status"] == "dead"


def test_entities_transitions_actions_stats_workers(api: TestClient, db_url: str) -> None:
    for trigger in ("ship", "deliver"):
        assert api.post("/api/v1/events", json=_event("e1", trigger)).status_code == 201
    later = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    assert api.post("/api/v1/events", json=_event("e2", fires_at=later)).status_code == 201
    drain(db_url)
    entity = api.get(f"/api/v1/entities/{MACHINE}/e1", params={"limit": 1}).json()
    assert (entity["state"], entity["version"]) == ("delivered", 2)
    assert [(h["from"], h["to"], h["machine_version"]) for h in entity["history"]] == [
        ("shipped", "delivered", 1)
    ]
    assert entity["next_history_cursor"] == 2
    older = api.get(
        f"/api/v1/entities/{MACHINE}/e1", params={"limit": 1, "history_cursor": 2}
    ).json()
    assert [h["to"] for h in older["history"]] == ["shipped"] and older[
        "next_history_cursor"
    ] is None
    waiting = api.get(f"/api/v1/entities/{MACHINE}/e2").json()
    assert waiting["state"] is None and len(waiting["pending"]) == 1
    assert api.get(f"/api/v1/entities/{MACHINE}/ghost").status_code == 404

    feed = api.get("/api/v1/transitions", params={"limit": 1}).json()
    assert [t["to"] for t in feed["items"]] == ["shipped"]
    rest = api.get("/api/v1/transitions", params={"after": feed["next_cursor"]}).json()
    assert [t["to"] for t in rest["items"]] == ["delivered"]
    assert (
        api.get("/api/v1/transitions", params={"after": rest["next_cursor"]}).json()["items"] == []
    )

    actions = api.get("/api/v1/actions", params={"machine": MACHINE}).json()["items"]
    assert [a["action"] for a in actions] == ["notify"]
    action_id = actions[0]["id"]
    preview = api.post("/api/v1/actions/discard", json={"ids": [action_id], "dry_run": True}).json()
    assert preview["matched"] == 1 and preview["affected"] is None
    gone = api.post("/api/v1/actions/discard", json={"ids": [action_id]}).json()
    assert gone["affected"] == 1
    back = api.post("/api/v1/actions/retry", json={"filter": {"status": "discarded"}}).json()
    assert back["affected"] == 1
    assert api.post("/api/v1/actions/retry", json={}).status_code == 422

    stats = api.get("/api/v1/stats").json()
    assert stats["events"]["completed"] == 2
    assert stats["by_machine"][MACHINE] == {"completed": 2, "pending": 1}
    assert stats["backlog"] == {"pending": 1, "due": 0, "oldest_due_seconds": 0.0}
    assert len(stats["per_minute"]) == 60
    assert sum(m["applied"] for m in stats["per_minute"]) == 2
    assert api.get("/api/v1/workers").json() == []
