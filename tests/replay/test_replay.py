"""Replay testing: recorded history re-decided by a candidate, through the API and the CLI."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from pystator.cli import main
from pystator.services.replay import NOT_RECORDED, PRUNED
from pystator.stores.sql.engine import create_engine_from_url
from pystator.stores.sql.schema import transition_history
from tests.replay.machines import LOAN, MACHINE, SCORES, threshold, without_rejection
from tests.support.api_clients import client, drain

pytestmark = pytest.mark.integration


@pytest.fixture(params=["postgresql", "sqlite"])
def db_url(request: pytest.FixtureRequest) -> str:
    name = "pg_migrated_url" if request.param == "postgresql" else "sqlite_migrated_url"
    return str(request.getfixturevalue(name))


@pytest.fixture
def recorded(db_url: str) -> Iterator[TestClient]:
    """The loan machine published, and one submit + one decide recorded per score."""
    with client(db_url) as api:
        assert api.post("/api/v1/machines", json={"config": LOAN}).status_code == 201
        for n, score in enumerate(SCORES):
            for trigger, context in (("submit", {}), ("decide", {"score": score})):
                event = {
                    "machine": MACHINE,
                    "entity_id": f"l{n}",
                    "trigger": trigger,
                    "context": context,
                }
                assert api.post("/api/v1/events", json=event).status_code in (200, 201, 202)
        assert drain(db_url) == 2 * len(SCORES)
        yield api


def _replay(api: TestClient, candidate: dict[str, Any], **extra: Any) -> dict[str, Any]:
    response = api.post(
        f"/api/v1/machines/{MACHINE}/replay", json={"candidate": candidate, **extra}
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


def _group(report: dict[str, Any], state: str, trigger: str) -> dict[str, Any]:
    return next(g for g in report["groups"] if (g["state"], g["trigger"]) == (state, trigger))


def test_an_unchanged_machine_replays_with_no_divergence(recorded: TestClient) -> None:
    report = _replay(recorded, LOAN)
    assert report["ok"] is True
    assert (report["entities"], report["transitions"]) == (len(SCORES), 2 * len(SCORES))
    assert (report["matched"], report["diverged"], report["skipped"]) == (10, 0, 0)
    assert _group(report, "REVIEW", "decide")["examples"]["matched"]["entity_id"] == "l0"


def test_a_changed_guard_threshold_diverges_with_an_example(recorded: TestClient) -> None:
    report = _replay(recorded, threshold(620))
    assert report["ok"] is False and report["diverged"] == 1
    decide = _group(report, "REVIEW", "decide")
    assert decide["matched"] == 4 and decide["diverged"] == {"target": 1}
    example = decide["examples"]["target"]
    assert (example["entity_id"], example["recorded"], example["candidate"]) == (
        "l4",
        "APPROVED",
        "REJECTED",
    )
    assert example["event_id"] is not None
    allowed = _replay(recorded, threshold(620), allow=[{"state": "REVIEW", "trigger": "decide"}])
    assert allowed["ok"] is True and allowed["allowed"] == 1


def test_a_removed_transition_is_reported_as_now_rejected(recorded: TestClient) -> None:
    report = _replay(recorded, without_rejection())
    decide = _group(report, "REVIEW", "decide")
    assert decide["diverged"] == {"rejected": 2}
    assert decide["examples"]["rejected"]["recorded"] == "REJECTED"
    assert _group(report, "NEW", "submit")["diverged"] == {}


def test_rows_without_guard_input_are_skipped_with_the_reason(
    recorded: TestClient, db_url: str
) -> None:
    engine = create_engine_from_url(db_url)
    try:
        with engine.begin() as conn:
            h = transition_history.c
            conn.execute(
                sa.update(transition_history)
                .where(h.entity_id.in_(["l0", "l1"]), h.version == 2)
                .values(guard_context=None)
            )
            conn.execute(sa.delete(transition_history).where(h.entity_id == "l1", h.version == 1))
    finally:
        engine.dispose()
    report = _replay(recorded, LOAN)
    assert report["ok"] is True and report["skipped"] == 2
    assert _group(report, "REVIEW", "decide")["skipped"] == {NOT_RECORDED: 1, PRUNED: 1}


def test_bad_replay_requests_are_clear_4xx(recorded: TestClient) -> None:
    url = f"/api/v1/machines/{MACHINE}/replay"
    assert recorded.post(url, json={"candidate": LOAN, "sample": 0}).status_code == 422
    assert recorded.post(url, json={"candidate": {"states": []}}).status_code == 422
    other = {**LOAN, "meta": {"version": "1", "machine_name": "other"}}
    response = recorded.post(url, json={"candidate": other})
    assert response.status_code == 409
    assert response.headers["content-type"].startswith("application/problem+json")


def test_the_cli_gates_on_divergence(
    recorded: TestClient,
    db_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PYSTATOR_DATABASE_URL", db_url)
    same, changed, allow = tmp_path / "same.json", tmp_path / "changed.json", tmp_path / "a.yaml"
    same.write_text(json.dumps(LOAN))
    changed.write_text(json.dumps(threshold(620)))
    allow.write_text("allow:\n  - {state: REVIEW, trigger: decide, kind: target}\n")

    assert main(["replay", MACHINE, "--candidate", str(same)]) == 0
    assert "10 matched, 0 diverged" in capsys.readouterr().out
    assert main(["replay", MACHINE, "--candidate", str(changed), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["diverged"] == 1
    assert main(["replay", MACHINE, "--candidate", str(changed)]) == 1
    out = capsys.readouterr().out
    assert "entity 'l4'" in out and out.rstrip().endswith("DIVERGED")
    assert main(["replay", MACHINE, "--candidate", str(changed), "--allow", str(allow)]) == 0
    capsys.readouterr()
    assert main(["replay", MACHINE, "--candidate", str(same), "--entities", "2"]) == 0
    assert "4 transitions of 2 entities" in capsys.readouterr().out
    assert main(["replay", MACHINE, "--candidate", str(tmp_path / "missing.yaml")]) == 2
    assert "missing.yaml" in capsys.readouterr().err
