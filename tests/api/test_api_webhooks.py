"""Operator webhooks: CRUD and validation, and delivery through the durable outbox — a receiver
that is down for a while gets each delivery once, signed, when it comes back (PostgreSQL and
SQLite; short retry backoff injected), also across a worker killed with SIGKILL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from pystator.fleet.relay import Relay
from pystator.fleet.runtime import Runtime
from pystator.fleet.webhooks import SEND_THREADS, WebhookDispatcher, verify
from pystator.fsm_core.clock import utc_now
from pystator.stores.sql.connections import dispose, fleet_engine
from tests.support import worker_processes as procs
from tests.support.api_clients import MACHINE, client, drain, parcel, set_status, settings_for
from tests.support.waiting import wait_until
from tests.support.webhook_receiver import Receiver

pytestmark = pytest.mark.integration

SECRET = "a-test-secret-of-some-length"


@pytest.fixture(params=["postgresql", "sqlite"])
def db_url(request: pytest.FixtureRequest) -> str:
    name = "pg_migrated_url" if request.param == "postgresql" else "sqlite_migrated_url"
    return str(request.getfixturevalue(name))


@pytest.fixture
def api(db_url: str) -> Iterator[TestClient]:
    with client(db_url) as test_client:
        assert test_client.post("/api/v1/machines", json={"config": parcel()}).status_code == 201
        yield test_client


def _hook(url: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": "ops",
        "url": url,
        "kinds": ["machine.published", "transition.failed", "dead_letter"],
        "secret": SECRET,
        **extra,
    }


def test_crud_masks_the_secret_and_refuses_what_cannot_work(api: TestClient) -> None:
    created = api.post("/api/v1/webhooks", json=_hook("https://example.com/h"))
    assert created.status_code == 201
    hook = created.json()
    assert hook["secret"] == SECRET and hook["secret_hint"] == SECRET[:4] + "…"
    listed = api.get("/api/v1/webhooks").json()
    assert [h["id"] for h in listed] == [hook["id"]] and "secret" not in listed[0]
    changed = api.put(
        f"/api/v1/webhooks/{hook['id']}", json=_hook("https://example.com/x", enabled=False)
    )
    assert changed.status_code == 200 and changed.json()["enabled"] is False
    assert api.get(f"/api/v1/webhooks/{hook['id']}").json()["url"] == "https://example.com/x"
    for bad in (
        _hook("ftp://example.com/h"),
        _hook("https://example.com/h", kinds=[]),
        _hook("https://example.com/h", kinds=["nope"]),
        _hook("https://example.com/h", kinds=["dwell.breached"]),
        _hook("https://example.com/h", secret="short"),
        {**_hook("https://example.com/h"), "extra": 1},
    ):
        refused = api.post("/api/v1/webhooks", json=bad)
        assert refused.status_code == 422, bad
        assert refused.headers["content-type"] == "application/problem+json"
    assert api.get("/api/v1/webhooks/999").status_code == 404
    assert api.post("/api/v1/webhooks/999/test").status_code == 404
    assert api.get("/api/v1/webhooks/99999999999999999999").status_code == 422
    assert api.delete(f"/api/v1/webhooks/{hook['id']}").status_code == 200
    assert api.get("/api/v1/webhooks").json() == []
    audit = [a["route"] for a in api.get("/api/v1/audit").json()["items"]]
    assert audit.count("/api/v1/webhooks") == 1 and "/api/v1/webhooks/{webhook_id}" in audit


def _deliveries(api: TestClient, hook_id: int) -> list[dict[str, Any]]:
    response = api.get(f"/api/v1/webhooks/{hook_id}/deliveries")
    assert response.status_code == 200
    items: list[dict[str, Any]] = response.json()["items"]
    return items


@pytest.mark.parametrize("field", ["name", "url", "machine", "secret", "states"])
def test_a_control_character_is_refused_not_stored(api: TestClient, field: str) -> None:
    # PostgreSQL cannot store NUL in text or JSON: it was a 500 (found by the seeded fuzzer)
    bad = "https://example.com/\x00" if field == "url" else "bad\x00name-of-sixteen+"
    hook = {**_hook("https://example.com/h"), field: [bad] if field == "states" else bad}
    created = api.post("/api/v1/webhooks", json=hook)
    assert created.status_code == 422, created.text
    assert field in created.text
    made = api.post("/api/v1/webhooks", json=_hook("https://example.com/h")).json()
    changed = api.put(f"/api/v1/webhooks/{made['id']}", json=hook)
    assert changed.status_code == 422, changed.text
    assert api.get(f"/api/v1/webhooks/{made['id']}").json()["name"] == "ops"


def test_a_receiver_down_for_a_while_gets_each_delivery_once_signed(
    api: TestClient, db_url: str
) -> None:
    receiver = Receiver()  # down: nothing listens on its port yet
    hook = api.post("/api/v1/webhooks", json=_hook(receiver.url)).json()
    # a rejected event: "deliver" is no transition from "created"
    event = {"machine": MACHINE, "entity_id": "p1", "trigger": "deliver"}
    assert api.post("/api/v1/events", json=event).status_code == 201
    drain(db_url)
    assert api.post(f"/api/v1/webhooks/{hook['id']}/test").status_code == 202
    runtime = Runtime.from_settings(
        settings_for(db_url, action_retry_base_seconds=0.05, action_retry_max_seconds=0.2),
        concurrency=1,
    )
    relay = Relay(runtime)
    try:

        def tried_while_down() -> bool:
            relay.tick()
            items = _deliveries(api, hook["id"])
            return len(items) == 3 and all(i["attempts"] >= 2 for i in items)

        wait_until(tried_while_down, interval=0.05, message="retries while the receiver is down")
        for item in _deliveries(api, hook["id"]):
            assert item["status"] == "failing" and "failed" in item["last_error"], item
        assert receiver.snapshot() == []
        receiver.up()

        def delivered() -> bool:
            relay.tick()
            return all(i["status"] == "delivered" for i in _deliveries(api, hook["id"]))

        wait_until(delivered, interval=0.05, message="every delivery delivered")
        for _ in range(3):
            relay.tick()  # nothing is sent again
    finally:
        receiver.down()
        runtime.close()
    items = _deliveries(api, hook["id"])
    got = receiver.snapshot()
    assert sorted(r.headers["X-Pystator-Delivery"] for r in got) == sorted(
        str(i["id"]) for i in items
    )
    assert all(verify(SECRET, r.headers, r.body) for r in got)
    assert not verify("another-secret-entirely", got[0].headers, got[0].body)
    assert {r.json["kind"] for r in got} == {"machine.published", "transition.failed", "test"}
    failed = next(r.json for r in got if r.json["kind"] == "transition.failed")
    assert failed["data"]["entity_id"] == "p1" and failed["data"]["trigger"] == "deliver"
    published = next(r.json for r in got if r.json["kind"] == "machine.published")
    assert published["data"]["machine"] == MACHINE and published["data"]["version"] == 1
    assert all(i["response_status"] == 204 and i["attempts"] >= 3 for i in items)
    everyone = api.get("/api/v1/webhooks/deliveries").json()["items"]
    assert [i["id"] for i in everyone] == [i["id"] for i in items]


def test_a_sweep_sends_side_by_side_over_kept_alive_connections(
    api: TestClient, db_url: str
) -> None:
    receiver = Receiver(keep_alive=True)
    receiver.up()
    hook = api.post("/api/v1/webhooks", json=_hook(receiver.url)).json()
    for _ in range(40):
        assert api.post(f"/api/v1/webhooks/{hook['id']}/test").status_code == 202
    runtime = Runtime.from_settings(settings_for(db_url), concurrency=1)
    relay = Relay(runtime)
    try:

        def delivered() -> bool:
            relay.tick()
            items = _deliveries(api, hook["id"])
            return len(items) >= 41 and all(i["status"] == "delivered" for i in items)

        wait_until(delivered, interval=0.05, message="every delivery delivered")
    finally:
        runtime.close()
        receiver.down()
    assert runtime.webhook_sender._client is None  # its connections closed with the runtime
    items = _deliveries(api, hook["id"])
    got = receiver.snapshot()
    assert sorted(r.headers["X-Pystator-Delivery"] for r in got) == sorted(
        str(i["id"]) for i in items
    )  # each once
    assert all(verify(SECRET, r.headers, r.body) for r in got)
    # at most one connection per sending thread, each reused for many deliveries
    assert len({r.peer for r in got}) <= SEND_THREADS


def test_deliveries_survive_a_worker_killed_with_sigkill(
    pg_migrated_url: str, tmp_path: Path
) -> None:
    receiver = Receiver()
    env = {
        "PYSTATOR_DATABASE_URL": pg_migrated_url,
        "PYSTATOR_RELAY_INTERVAL_SECONDS": "0.2",
        "PYSTATOR_ACTION_RETRY_BASE_SECONDS": "0.1",
        "PYSTATOR_ACTION_RETRY_MAX_SECONDS": "0.5",
        "PYSTATOR_LOG_FORMAT": "json",
    }
    with client(pg_migrated_url) as api:
        assert api.post("/api/v1/machines", json={"config": parcel()}).status_code == 201
        hook = api.post("/api/v1/webhooks", json=_hook(receiver.url)).json()
        for _ in range(3):
            assert api.post(f"/api/v1/webhooks/{hook['id']}/test").status_code == 202
        worker = procs.start(["worker", "--concurrency", "1"], env, tmp_path / "w1.log")
        try:
            procs.wait_for(
                lambda: (
                    len(items := _deliveries(api, hook["id"])) == 4
                    and all(i["attempts"] >= 1 for i in items)
                ),
                "attempts while the receiver is down",
            )
        finally:
            procs.kill(worker)  # SIGKILL, mid-retries
        receiver.up()
        worker = procs.start(["worker", "--concurrency", "1"], env, tmp_path / "w2.log")
        try:
            procs.wait_for(
                lambda: all(i["status"] == "delivered" for i in _deliveries(api, hook["id"])),
                "every delivery delivered by the new worker",
            )
        finally:
            procs.stop(worker)
            receiver.down()
        items = _deliveries(api, hook["id"])
    got = sorted(r.headers["X-Pystator-Delivery"] for r in receiver.snapshot())
    assert got == sorted(str(i["id"]) for i in items)  # each once


def test_dead_letters_and_dwell_breaches_are_found_once(api: TestClient, db_url: str) -> None:
    body = _hook(
        "http://127.0.0.1:9/hook",
        kinds=["dead_letter", "dwell.breached"],
        states=["shipped"],
        dwell_seconds=60,
    )
    hook = api.post("/api/v1/webhooks", json=body).json()
    for entity in ("p1", "p2"):
        event = {"machine": MACHINE, "entity_id": entity, "trigger": "ship"}
        assert api.post("/api/v1/events", json=event).status_code == 201
    drain(db_url)
    stuck = {"machine": MACHINE, "entity_id": "p3", "trigger": "ship"}
    dead_id = api.post("/api/v1/events", json=stuck).json()["id"]
    set_status(db_url, [dead_id], "dead", error="carrier down")
    engine = fleet_engine(db_url, pool_size=1)
    later = utc_now() + timedelta(minutes=2)  # p1 and p2 have been "shipped" for 2 minutes
    dispatcher = WebhookDispatcher(engine, clock=lambda: later)
    try:
        assert dispatcher.tick() == 3
        assert dispatcher.tick() == 0  # found once
    finally:
        dispose(engine)
    items = _deliveries(api, hook["id"])
    assert sorted((i["kind"], i["source_key"]) for i in items) == [
        ("dead_letter", f"event:{dead_id}"),
        ("dwell.breached", f"{MACHINE}|p1|1"),
        ("dwell.breached", f"{MACHINE}|p2|1"),
    ]
    dead = next(i for i in items if i["kind"] == "dead_letter")
    assert dead["payload"]["last_error"]["message"] == "carrier down"
