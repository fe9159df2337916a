"""Changing a live machine through the HTTP API and ``pystator machines sync`` (issue 25, part
1), on PostgreSQL and SQLite: the renaming case refused with counts, a dry run, the compatibility
route, a state map that moves the entity (recorded as a migration) so its next event applies."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml
from fastapi.testclient import TestClient

from pystator.cli import main
from pystator.stores.sql.engine import create_engine_from_url
from pystator.stores.sql.schema import audit_log, entity_states, transition_history, worker_events
from tests.support.api_clients import client, drain

pytestmark = pytest.mark.integration

NAME = "docs_flow"


def version(review: str) -> dict[str, Any]:
    """NEW -> ``review`` -> DONE."""
    return {
        "meta": {"version": "1", "machine_name": NAME},
        "states": [
            {"name": "NEW", "type": "initial"},
            {"name": review, "type": "stable"},
            {"name": "DONE", "type": "terminal"},
        ],
        "transitions": [
            {"trigger": "submit", "source": "NEW", "dest": review},
            {"trigger": "approve", "source": review, "dest": "DONE"},
        ],
    }


@pytest.fixture(params=["postgresql", "sqlite"])
def db_url(request: pytest.FixtureRequest) -> str:
    name = "pg_migrated_url" if request.param == "postgresql" else "sqlite_migrated_url"
    return str(request.getfixturevalue(name))


@pytest.fixture
def api(db_url: str) -> Iterator[TestClient]:
    with client(db_url) as test_client:
        yield test_client


def submit(api: TestClient, entity_id: str, trigger: str) -> int:
    response = api.post(
        "/api/v1/events", json={"machine": NAME, "entity_id": entity_id, "trigger": trigger}
    )
    assert response.status_code in (200, 201, 202), response.text
    return int(response.json()["id"])


def rows(db_url: str, query: Any) -> list[Any]:
    engine = create_engine_from_url(db_url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(query).mappings())
    finally:
        engine.dispose()


def status(db_url: str, event_id: int) -> str:
    found = rows(db_url, sa.select(worker_events.c.status).where(worker_events.c.id == event_id))
    return str(found[0]["status"])


def test_renaming_through_the_api(api: TestClient, db_url: str) -> None:
    assert api.post("/api/v1/machines", json={"config": version("REVIEW")}).status_code == 201
    submit(api, "x1", "submit")
    drain(db_url)

    refused = api.put(f"/api/v1/machines/{NAME}", json={"config": version("CHECK")})
    assert refused.status_code == 409
    assert refused.headers["content-type"].startswith("application/problem+json")
    body = refused.json()
    assert "'REVIEW' is removed and 1 entities are in it" in body["detail"]
    problem = body["report"]["problems"][0]
    assert (problem["kind"], problem["state"], problem["entities"]) == (
        "state_removed",
        "REVIEW",
        1,
    )

    dry = api.put(
        f"/api/v1/machines/{NAME}", params={"dry_run": "true"}, json={"config": version("CHECK")}
    )
    assert dry.status_code == 200
    assert (dry.json()["dry_run"], dry.json()["refused"], dry.json()["created"]) == (
        True,
        True,
        False,
    )
    report = api.post(
        f"/api/v1/machines/{NAME}/compatibility",
        params={"map": "REVIEW=CHECK"},
        json={"config": version("CHECK")},
    ).json()
    assert report["ok"] and report["problems"][0]["mapped_to"] == "CHECK"
    bad = api.put(
        f"/api/v1/machines/{NAME}", params={"map": "REVIEW"}, json={"config": version("CHECK")}
    )
    assert bad.status_code == 422 and "OLD=NEW" in bad.json()["detail"]

    published = api.put(
        f"/api/v1/machines/{NAME}",
        params={"map": "REVIEW=CHECK"},
        json={"config": version("CHECK")},
    )
    assert published.status_code == 201, published.text
    assert published.json()["migration"]["moved"][0]["entity_id"] == "x1"
    state = rows(db_url, sa.select(entity_states).where(entity_states.c.entity_id == "x1"))[0]
    assert (state["state"], state["machine_version"]) == ("CHECK", 2)
    history = rows(
        db_url, sa.select(transition_history).where(transition_history.c.origin == "migration")
    )
    assert [(h["source_state"], h["target_state"]) for h in history] == [("REVIEW", "CHECK")]
    audited = rows(
        db_url, sa.select(audit_log).where(audit_log.c.method == "PUT", audit_log.c.status == 201)
    )[0]
    assert audited["selection"] == {"state_map": {"REVIEW": "CHECK"}} and audited["affected"] == 2

    event_id = submit(api, "x1", "approve")
    drain(db_url)
    assert status(db_url, event_id) == "completed"


def test_renaming_through_the_cli(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PYSTATOR_DATABASE_URL", db_url)
    monkeypatch.setenv("PYSTATOR_BROKER_URL", "memory://")
    folder = tmp_path / "machines"
    folder.mkdir()
    (folder / "flow.yaml").write_text(yaml.safe_dump(version("REVIEW")))
    assert main(["machines", "sync", str(folder)]) == 0
    with client(db_url) as api:
        submit(api, "x1", "submit")
    drain(db_url)

    (folder / "flow.yaml").write_text(yaml.safe_dump(version("CHECK")))
    capsys.readouterr()
    assert main(["machines", "sync", str(folder)]) == 2
    err = capsys.readouterr().err
    assert "state 'REVIEW' is removed and 1 entities are in it" in err and "--map" in err
    assert main(["machines", "sync", str(folder), "--dry-run", "--json"]) == 1
    dry = json.loads(capsys.readouterr().out)
    assert dry["refused"] and dry["report"]["problems"][0]["entities"] == 1

    map_file = tmp_path / "map.yaml"
    map_file.write_text("REVIEW: CHECK\n")
    assert main(["machines", "sync", str(folder), "--map-file", str(map_file)]) == 0
    out = capsys.readouterr().out
    assert f"{NAME}: version 2 (new version)" in out
    assert "moved x1: REVIEW -> CHECK" in out
    with client(db_url) as api:
        event_id = submit(api, "x1", "approve")
    drain(db_url)
    assert status(db_url, event_id) == "completed"
    assert main(["machines", "sync", str(folder), "--map", "nope"]) == 2
