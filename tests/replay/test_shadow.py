"""Shadow mode: a candidate compared beside the active version; it never acts."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from pystator.stores.sql.engine import create_engine_from_url
from pystator.stores.sql.schema import (
    action_outbox,
    audit_log,
    machine_shadows,
    transition_history,
    worker_timers,
)
from tests.replay.machines import LOAN, MACHINE, SCORES, shadow_candidate
from tests.support.api_clients import client, drain
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration
SHADOW = f"/api/v1/discovery/shadow/{MACHINE}"


@pytest.fixture(params=["postgresql", "sqlite"])
def db_url(request: pytest.FixtureRequest) -> str:
    name = "pg_migrated_url" if request.param == "postgresql" else "sqlite_migrated_url"
    return str(request.getfixturevalue(name))


@pytest.fixture
def api(db_url: str) -> Iterator[TestClient]:
    with client(db_url) as test_client:
        assert test_client.post("/api/v1/machines", json={"config": LOAN}).status_code == 201
        yield test_client


def submit_all(api: TestClient) -> None:
    """One submit and one decide per score."""
    for n, score in enumerate(SCORES):
        for trigger, context in (("submit", {}), ("decide", {"score": score})):
            body = {"machine": MACHINE, "entity_id": f"l{n}", "trigger": trigger}
            assert api.post("/api/v1/events", json={**body, "context": context}).is_success


def count(db_url: str, table: sa.Table, *where: Any) -> int:
    engine = create_engine_from_url(db_url)
    try:
        with engine.connect() as conn:
            query = sa.select(sa.func.count()).select_from(table).where(*where)
            return int(conn.execute(query).scalar_one())
    finally:
        engine.dispose()


def outcomes(db_url: str) -> dict[str, str]:
    engine = create_engine_from_url(db_url)
    try:
        with engine.connect() as conn:
            h = transition_history.c
            rows = conn.execute(sa.select(h.entity_id, h.target_state).order_by(h.version))
            return {entity: target for entity, target in rows}
    finally:
        engine.dispose()


def test_shadow_diffs_are_recorded_and_the_shadow_never_acts(api: TestClient, db_url: str) -> None:
    started = api.post(SHADOW, json={"candidate": shadow_candidate(), "sample_rate": 1.0})
    assert started.status_code == 201, started.text
    assert api.post(SHADOW, json={"candidate": shadow_candidate()}).status_code == 409
    submit_all(api)
    assert drain(db_url) == 2 * len(SCORES)

    # the active version decided everything: l4 (610) approved, no shadow action, no timer
    assert outcomes(db_url) == {
        "l0": "APPROVED",
        "l1": "APPROVED",
        "l2": "REJECTED",
        "l3": "REJECTED",
        "l4": "APPROVED",
    }
    assert count(db_url, action_outbox) == 0
    assert count(db_url, worker_timers) == 0

    view = api.get(SHADOW).json()
    assert (view["status"], view["matched"], view["mismatched"]) == ("active", 4, 6)
    assert view["match_rate"] == pytest.approx(0.4)
    groups = {
        (d["state"], d["trigger"], d["active_target"], d["shadow_target"], d["kind"]): d
        for d in view["diffs"]
    }
    assert groups[("NEW", "submit", "REVIEW", "REVIEW", "actions")]["count"] == 5
    edge = groups[("REVIEW", "decide", "APPROVED", "REJECTED", "target")]
    assert edge["count"] == 1 and edge["examples"][0]["entity_id"] == "l4"
    assert edge["examples"][0]["event_id"] is not None


def test_stop_and_promote_are_audited_and_promote_publishes(api: TestClient, db_url: str) -> None:
    assert api.get(SHADOW).status_code == 404
    assert api.post(f"{SHADOW}/stop").status_code == 404
    api.post(SHADOW, json={"candidate": shadow_candidate(), "sample_rate": 0.5})
    stopped = api.post(f"{SHADOW}/stop").json()
    assert stopped["status"] == "stopped" and stopped["sample_rate"] == 0.5
    api.post(SHADOW, json={"candidate": shadow_candidate()})
    promoted = api.post(f"{SHADOW}/promote").json()
    assert (promoted["status"], promoted["promoted_version"]) == ("promoted", 2)
    machine = api.get(f"/api/v1/machines/{MACHINE}").json()
    assert machine["current_version"] == 2
    assert machine["definition"]["meta"]["version"] == "shadow"
    assert count(db_url, machine_shadows) == 2
    shadow_routes = audit_log.c.route.like("%/shadow/%")
    wait_until(lambda: count(db_url, audit_log, shadow_routes) == 4, timeout=30)


def test_bad_shadow_requests_are_clear_4xx(api: TestClient) -> None:
    assert api.post(SHADOW, json={"candidate": LOAN, "sample_rate": 0}).status_code == 422
    assert api.post(SHADOW, json={"candidate": {"states": []}}).status_code == 422
    unknown = api.post(
        "/api/v1/discovery/shadow/nope",
        json={"candidate": {**LOAN, "meta": {"version": "1", "machine_name": "nope"}}},
    )
    assert unknown.status_code == 404
    assert unknown.headers["content-type"].startswith("application/problem+json")
    assert api.get("/api/v1/discovery/shadow/nope").status_code == 404
