"""The machine registry over HTTP (versions, retire, validate, process) and a running worker
picking up new versions without a restart."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from pystator.cli import main
from pystator.stores.sql.engine import create_engine_from_url
from pystator.stores.sql.schema import transition_history, worker_events
from tests.support import worker_processes as procs
from tests.support.api_clients import MACHINE, client, parcel

pytestmark = pytest.mark.integration


@pytest.fixture
def api(pg_migrated_url: str) -> Iterator[TestClient]:
    with client(pg_migrated_url) as test_client:
        yield test_client


def test_versions_are_immutable_and_numbered(api: TestClient) -> None:
    assert api.post("/api/v1/machines", json={"config": parcel()}).json()["version"] == 1
    same = api.put(f"/api/v1/machines/{MACHINE}", json={"config": parcel()})
    assert (same.status_code, same.json()["version"], same.json()["created"]) == (200, 1, False)
    changed = api.put(f"/api/v1/machines/{MACHINE}", json={"config": parcel("held")})
    assert (changed.status_code, changed.json()["version"]) == (201, 2)
    shown = api.get(f"/api/v1/machines/{MACHINE}").json()
    assert shown["current_version"] == 2
    assert [v["version"] for v in shown["versions"]] == [2, 1]
    assert shown["definition"]["transitions"][0]["dest"] == "held"
    assert shown["summary"]["triggers"] == ["deliver", "ship"]
    first = api.get(f"/api/v1/machines/{MACHINE}", params={"version": 1}).json()
    assert first["definition"]["transitions"][0]["dest"] == "shipped"
    assert api.get(f"/api/v1/machines/{MACHINE}", params={"version": 9}).status_code == 404
    assert api.get("/api/v1/machines/nothing").status_code == 404
    assert [m["name"] for m in api.get("/api/v1/machines").json()] == [MACHINE]
    renamed = api.put("/api/v1/machines/other", json={"config": parcel()})
    assert renamed.status_code == 409


def test_invalid_definitions_list_every_problem(api: TestClient) -> None:
    broken = parcel()
    broken["transitions"][0]["dest"] = "nowhere"
    broken["states"][1]["type"] = "weird"
    for path in ("/api/v1/validate", "/api/v1/machines/validate", "/api/v1/machines"):
        response = api.post(path, json={"config": broken})
        assert response.status_code == 422, path
        paths = {e["path"] for e in response.json()["errors"]}
        assert {"states[1].type", "transitions[0].dest"} <= paths
    nameless = parcel()
    del nameless["meta"]["machine_name"]
    refused = api.post("/api/v1/machines", json={"config": nameless})
    assert refused.status_code == 422
    assert [e["path"] for e in refused.json()["errors"]] == ["meta.machine_name"]
    valid = api.post("/api/v1/validate", json={"config": parcel()}).json()
    assert valid["valid"] and valid["summary"]["initial_state"] == "created"
    assert api.get("/api/v1/machines").json() == []


def test_process_is_stateless(api: TestClient) -> None:
    inline = api.post(
        "/api/v1/process",
        json={"config": parcel(), "current_state": "created", "trigger": "ship"},
    ).json()
    assert (inline["success"], inline["target_state"]) == (True, "shipped")
    assert [a["name"] for a in inline["actions"]] == ["notify"]
    rejected = api.post(
        "/api/v1/process",
        json={"config": parcel(), "current_state": "delivered", "trigger": "ship"},
    ).json()
    assert rejected["success"] is False and rejected["error"]["code"]
    api.post("/api/v1/machines", json={"config": parcel()})
    api.put(f"/api/v1/machines/{MACHINE}", json={"config": parcel("held")})
    stored = {"machine": MACHINE, "current_state": "created", "trigger": "ship"}
    assert api.post("/api/v1/process", json=stored).json()["target_state"] == "held"
    pinned = api.post("/api/v1/process", json={**stored, "version": 1}).json()
    assert pinned["target_state"] == "shipped"
    both = api.post("/api/v1/process", json={**stored, "config": parcel()})
    assert both.status_code == 422
    bad_state = api.post("/api/v1/process", json={**stored, "current_state": "limbo"})
    assert bad_state.status_code == 422
    assert api.get("/api/v1/events").json()["items"] == []


def test_retire_refuses_while_work_is_pending_and_keeps_history(api: TestClient) -> None:
    api.post("/api/v1/machines", json={"config": parcel()})
    event = {"machine": MACHINE, "entity_id": "p1", "trigger": "ship"}
    event_id = api.post("/api/v1/events", json=event).json()["id"]
    busy = api.delete(f"/api/v1/machines/{MACHINE}")
    assert busy.status_code == 409
    assert busy.json()["pending_events"] == 1
    api.post("/api/v1/events/discard", json={"ids": [event_id]})
    retired = api.delete(f"/api/v1/machines/{MACHINE}")
    assert retired.status_code == 200 and retired.json()["retired_at"]
    assert api.delete(f"/api/v1/machines/{MACHINE}").status_code == 404
    refused = api.post("/api/v1/events", json=event)
    assert refused.status_code == 422 and refused.json()["errors"][0]["path"] == "machine"
    assert api.get("/api/v1/machines").json() == []
    assert len(api.get("/api/v1/machines", params={"include_retired": True}).json()) == 1
    assert api.get(f"/api/v1/machines/{MACHINE}").json()["versions"][0]["version"] == 1
    again = api.post("/api/v1/machines", json={"config": parcel()}).json()
    assert (again["version"], again["created"]) == (2, True)  # back, as a new version


def test_machines_cli_sync_list_show(
    pg_migrated_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PYSTATOR_DATABASE_URL", pg_migrated_url)
    assert main(["machines", "sync", "examples/"]) == 0
    first = capsys.readouterr().out
    assert "order_management: version 1 (new version)" in first
    assert main(["machines", "sync", "examples/"]) == 0
    assert "(unchanged)" in capsys.readouterr().out
    assert main(["machines", "list"]) == 0
    assert "order_management  version 1" in capsys.readouterr().out
    assert main(["machines", "show", "order_management"]) == 0
    assert '"current_version": 1' in capsys.readouterr().out
    (tmp_path / "bad.yaml").write_text("meta: {machine_name: bad}\nstates: []\n")
    assert main(["machines", "sync", str(tmp_path)]) == 2
    assert "states" in capsys.readouterr().err


def _applied(db_url: str, entity: str) -> tuple[str, int | None] | None:
    engine = create_engine_from_url(db_url)
    try:
        with engine.connect() as conn:
            row = conn.execute(
                sa.select(
                    transition_history.c.target_state, transition_history.c.machine_version
                ).where(transition_history.c.entity_id == entity)
            ).first()
            return None if row is None else (row[0], row[1])
    finally:
        engine.dispose()


def test_a_running_worker_picks_up_new_versions_without_restart(
    pg_migrated_url: str, api: TestClient, tmp_path: Path
) -> None:
    env = {
        "PYSTATOR_DATABASE_URL": pg_migrated_url,
        "PYSTATOR_REGISTRY_REFRESH_SECONDS": "0.5",
        "PYSTATOR_LOG_FORMAT": "json",
    }
    worker = procs.start(["worker", "--concurrency", "2"], env, tmp_path / "worker.log")
    try:
        assert api.post("/api/v1/machines", json={"config": parcel()}).status_code == 201
        api.post("/api/v1/events", json={"machine": MACHINE, "entity_id": "a", "trigger": "ship"})
        procs.wait_for(lambda: _applied(pg_migrated_url, "a") is not None, "version 1 applied")
        assert _applied(pg_migrated_url, "a") == ("shipped", 1)

        v2 = parcel("held", extra_trigger="hold")
        assert api.put(f"/api/v1/machines/{MACHINE}", json={"config": v2}).json()["version"] == 2
        # "ship" means one thing in v1 and another in v2: entities shipped until the worker has
        # v2 show v1's target; it must come to v2 without a restart (within the refresh time).
        version = 1
        shipped = 0
        while version == 1:
            shipped += 1
            entity = f"b{shipped}"
            api.post(
                "/api/v1/events", json={"machine": MACHINE, "entity_id": entity, "trigger": "ship"}
            )
            procs.wait_for(lambda e=entity: _applied(pg_migrated_url, e) is not None, "applied")
            target, version = _applied(pg_migrated_url, entity) or ("", 0)
            assert (target, version) in {("shipped", 1), ("held", 2)}
            assert shipped < 100, "the worker never loaded version 2"
        api.post("/api/v1/events", json={"machine": MACHINE, "entity_id": "c", "trigger": "hold"})
        procs.wait_for(lambda: _applied(pg_migrated_url, "c") is not None, "version 2 applied")
        assert _applied(pg_migrated_url, "c") == ("held", 2)
        engine = create_engine_from_url(pg_migrated_url)
        try:
            with engine.connect() as conn:
                outcomes = conn.execute(
                    sa.select(worker_events.c.entity_id, worker_events.c.outcome).order_by(
                        worker_events.c.id
                    )
                ).all()
        finally:
            engine.dispose()
        versions = [(e, o["machine_version"]) for e, o in outcomes]
        assert versions[0] == ("a", 1) and versions[-2:] == [(f"b{shipped}", 2), ("c", 2)]
        assert worker.poll() is None  # the same process throughout
    except (AssertionError, TimeoutError):
        print((tmp_path / "worker.log").read_text()[-5000:])
        raise
    finally:
        procs.stop(worker)
        procs.kill(worker)


def test_ready_is_503_while_the_broker_is_unreachable(pg_migrated_url: str) -> None:
    with client(pg_migrated_url) as healthy:
        assert healthy.get("/ready").json()["healthy"] is True
    with client(pg_migrated_url, broker_url="redis://127.0.0.1:1/0") as broken:
        ready = broken.get("/ready")
        assert ready.status_code == 503
        assert any(p.startswith("broker:") for p in ready.json()["problems"])
        assert broken.get("/health").status_code == 200  # liveness does not depend on it
