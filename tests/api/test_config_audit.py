"""Configuration changes are audited whichever door they come through — the HTTP API, the
command line, the Python facade — in the change's own transaction, with the same kind, and the
configuration stream (``GET /api/v1/events/stream``) delivers them all (PostgreSQL and SQLite).
"""

from __future__ import annotations

import getpass
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from pystator import PyStatorRuntime
from pystator.cli import main
from pystator.registry import versions
from pystator.registry.compatibility import IncompatibleVersionError
from pystator.services import api_keys
from pystator.stores.sql import audit_queries
from pystator.stores.sql.connections import dispose, fleet_engine
from pystator.stores.sql.schema import audit_log
from tests.support.api_clients import MACHINE, TEST_ACTOR, bearer, client, drain, parcel
from tests.support.live_app import live_app, read_events, sse_events

pytestmark = pytest.mark.integration

#: The principal the command line records: ``cli:<login name>@<host>``.
CLI = f"cli:{getpass.getuser()}@{socket.gethostname()}"
RUNTIME = f"runtime:{getpass.getuser()}@{socket.gethostname()}"
PYSTATOR = Path(sys.executable).parent / "pystator"


@pytest.fixture(params=["postgresql", "sqlite"])
def db_url(request: pytest.FixtureRequest) -> str:
    name = "pg_migrated_url" if request.param == "postgresql" else "sqlite_migrated_url"
    return str(request.getfixturevalue(name))


@pytest.fixture
def cli_env(db_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The in-process command line on ``db_url``."""
    monkeypatch.setenv("PYSTATOR_DATABASE_URL", db_url)
    monkeypatch.setenv("PYSTATOR_BROKER_URL", "memory://")
    return db_url


@contextmanager
def engine_on(db_url: str) -> Iterator[Engine]:
    engine = fleet_engine(db_url, pool_size=1)
    try:
        yield engine
    finally:
        dispose(engine)


def audit_rows(db_url: str) -> list[dict[str, Any]]:
    with engine_on(db_url) as engine, engine.connect() as conn:
        query = sa.select(audit_log).order_by(audit_log.c.id)
        return [dict(r) for r in conn.execute(query).mappings()]


def write_machine(folder: Path, config: dict[str, Any]) -> Path:
    folder.mkdir(exist_ok=True)
    (folder / "parcel.yaml").write_text(yaml.safe_dump(config))
    return folder


def pystator(db_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``pystator ARGS`` in its own process."""
    env = {**os.environ, "PYSTATOR_DATABASE_URL": db_url, "PYSTATOR_BROKER_URL": "memory://"}
    return subprocess.run(
        [str(PYSTATOR), *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def without_shipped() -> dict[str, Any]:
    """A next version of ``parcel`` without the state ``shipped``: refused while an entity is in
    it (and no state map says where it goes)."""
    config = parcel("held")
    config["states"] = [s for s in config["states"] if s["name"] != "shipped"]
    config["transitions"][1]["source"] = ["held"]
    return config


def feed_kinds(api: TestClient, **headers: str) -> list[str]:
    body = api.get(
        "/api/v1/events/stream", params={"after": 0, "max_seconds": 0}, headers=headers
    ).text
    return [line.removeprefix("event: ") for line in body.splitlines() if line.startswith("event:")]


def test_a_cli_sync_is_one_audit_row_with_the_cli_principal(
    cli_env: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = write_machine(tmp_path / "machines", parcel())
    assert main(["machines", "sync", str(folder)]) == 0
    (row,) = audit_rows(cli_env)
    assert (row["principal"], row["role"], row["method"], row["route"]) == (
        CLI,
        "admin",
        "CLI",
        "machines sync",
    )
    assert (row["kind"], row["target"], row["status"], row["affected"]) == (
        "machine.published",
        f"{MACHINE}@1",
        201,
        1,
    )
    with engine_on(cli_env) as engine:
        assert versions.show_machine(engine, MACHINE).version.created_by == CLI
    with client(cli_env) as api:
        (listed,) = api.get("/api/v1/audit").json()["items"]
        assert (listed["principal"], listed["kind"]) == (CLI, "machine.published")
        page = api.get("/ui/audit")
        assert page.status_code == 200
        assert CLI in page.text and "CLI machines sync" in page.text
        assert 'data-testid="audit-kind">machine.published<' in page.text
        assert feed_kinds(api) == ["machine.published"]


def test_a_subscribed_client_is_told_of_every_cli_change(db_url: str, tmp_path: Path) -> None:
    with live_app(db_url) as served:
        with served.client() as http:
            assert http.post("/api/v1/machines", json={"config": parcel()}).status_code == 201
        folder = write_machine(tmp_path / "machines", parcel("held"))
        with (
            served.client() as http,
            http.stream("GET", "/api/v1/events/stream") as response,  # from the tail on
        ):
            assert response.status_code == 200
            events = sse_events(response)
            synced = pystator(db_url, "machines", "sync", str(folder))
            assert synced.returncode == 0, synced.stderr
            created = pystator(db_url, "api-keys", "create", "--role", "viewer")
            assert created.returncode == 0, created.stderr
            key_id = created.stderr.split("created API key ")[1].split()[0]
            assert pystator(db_url, "api-keys", "revoke", key_id).returncode == 0
            retired = pystator(db_url, "machines", "retire", MACHINE)
            assert retired.returncode == 0, retired.stderr
            received = read_events(events, 4)
    assert [e.event for e in received] == [
        "machine.published",
        "api_key.created",
        "api_key.revoked",
        "machine.retired",
    ]
    assert [e.data["kind"] for e in received] == [e.event for e in received]
    assert {e.data["principal"] for e in received} == {CLI}
    assert [e.data["route"] for e in received] == [
        "machines sync",
        "api-keys create",
        "api-keys revoke",
        "machines retire",
    ]
    assert [e.data["target"] for e in received] == [
        f"{MACHINE}@2",
        f"key:{key_id}",
        f"key:{key_id}",
        MACHINE,
    ]


def test_the_python_facade_is_audited_as_the_runtime(db_url: str) -> None:
    runtime = PyStatorRuntime.from_url(db_url, environ={})
    try:
        runtime.create_machine_from_dict(parcel())
        runtime.update_machine_from_dict(parcel("held"))
        runtime.update_machine_from_dict(parcel("held"))  # identical: nothing stored
    finally:
        runtime.close()
    rows = audit_rows(db_url)
    assert [(r["principal"], r["method"], r["route"], r["kind"], r["target"]) for r in rows] == [
        (
            RUNTIME,
            "PYTHON",
            "PyStatorRuntime.create_machine_from_dict",
            "machine.published",
            f"{MACHINE}@1",
        ),
        (
            RUNTIME,
            "PYTHON",
            "PyStatorRuntime.update_machine_from_dict",
            "machine.published",
            f"{MACHINE}@2",
        ),
        (RUNTIME, "PYTHON", "PyStatorRuntime.update_machine_from_dict", None, f"{MACHINE}@2"),
    ]


def test_every_api_change_is_one_row_with_its_kind(db_url: str) -> None:
    with client(db_url) as api:

        def one_row(method: str, path: str, **kw: Any) -> dict[str, Any]:
            before = len(audit_rows(db_url))
            response = api.request(method, path, **kw)
            assert response.status_code < 300, response.text
            rows = audit_rows(db_url)
            assert len(rows) == before + 1, (method, path, rows[before:])
            return rows[-1]

        published = one_row("POST", "/api/v1/machines", json={"config": parcel()})
        assert (published["kind"], published["principal"], published["route"]) == (
            "machine.published",
            "local",
            "/api/v1/machines",
        )
        same = one_row("PUT", f"/api/v1/machines/{MACHINE}", json={"config": parcel()})
        assert (same["kind"], same["status"], same["affected"]) == (None, 200, 0)
        dry = one_row(
            "PUT",
            f"/api/v1/machines/{MACHINE}",
            params={"dry_run": True},
            json={"config": parcel("held")},
        )
        assert (dry["kind"], dry["selection"]) == (None, {"dry_run": True})
        key = one_row("POST", "/api/v1/api-keys", json={"role": "admin", "name": "ops"})
        assert (key["kind"], key["selection"]) == (
            "api_key.created",
            {"role": "admin", "name": "ops"},
        )
        with engine_on(db_url) as engine:
            secret = api_keys.create_key(engine, role="admin", name="t", by=TEST_ACTOR).secret
        admin = bearer(secret)
        hook = {"name": "ops", "url": "https://example.com/hook", "kinds": ["dead_letter"]}
        created = one_row("POST", "/api/v1/webhooks", json=hook, headers=admin)
        assert (created["kind"], created["selection"]["url"]) == (
            "webhook.created",
            "https://example.com/hook",
        )
        path = f"/api/v1/webhooks/{created['target'].removeprefix('webhook:')}"
        updated = one_row("PUT", path, json={**hook, "name": "ops2"}, headers=admin)
        assert (updated["kind"], updated["selection"]["secret_changed"]) == (
            "webhook.updated",
            False,
        )
        assert one_row("DELETE", path, headers=admin)["kind"] == "webhook.deleted"
        revoked = one_row(
            "DELETE", key["target"].replace("key:", "/api/v1/api-keys/"), headers=admin
        )
        assert revoked["kind"] == "api_key.revoked"
        shadow = f"/api/v1/discovery/shadow/{MACHINE}"
        assert (
            api.post(shadow, json={"candidate": parcel("held")}, headers=admin).status_code == 201
        )
        promoted = one_row("POST", f"{shadow}/promote", headers=admin)
        assert (promoted["kind"], promoted["route"], promoted["target"]) == (
            "machine.published",
            "/api/v1/discovery/shadow/{machine_name}/promote",
            f"{MACHINE}@2",
        )
        assert one_row("DELETE", f"/api/v1/machines/{MACHINE}", headers=admin)["kind"] == (
            "machine.retired"
        )
        assert feed_kinds(api, **admin) == [
            "machine.published",
            "api_key.created",
            "api_key.created",  # the test's own key, created with TEST_ACTOR
            "webhook.created",
            "webhook.updated",
            "webhook.deleted",
            "api_key.revoked",
            "machine.published",
            "machine.retired",
        ]


@pytest.fixture
def stranding(cli_env: str) -> Iterator[str]:
    """``parcel`` v1 with an entity in ``shipped`` (so :func:`without_shipped` is refused)."""
    with client(cli_env) as api:
        assert api.post("/api/v1/machines", json={"config": parcel()}).status_code == 201
        event = {"machine": MACHINE, "entity_id": "x1", "trigger": "ship"}
        assert api.post("/api/v1/events", json=event).status_code == 201
    assert drain(cli_env) == 1
    yield cli_env


def test_a_refused_publish_writes_no_row_through_any_door(
    stranding: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = audit_rows(stranding)
    with client(stranding) as api:
        refused = api.put(f"/api/v1/machines/{MACHINE}", json={"config": without_shipped()})
        assert refused.status_code == 409
    folder = write_machine(tmp_path / "machines", without_shipped())
    assert main(["machines", "sync", str(folder)]) == 2
    assert "version refused" in capsys.readouterr().err
    runtime = PyStatorRuntime.from_url(stranding, environ={})
    try:
        with pytest.raises(IncompatibleVersionError):
            runtime.update_machine_from_dict(without_shipped())
    finally:
        runtime.close()
    assert audit_rows(stranding) == before
    with engine_on(stranding) as engine:
        assert versions.show_machine(engine, MACHINE).record.current_version == 1


def test_a_change_and_its_row_commit_together(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_args: Any, **_kw: Any) -> int:
        raise RuntimeError("the audit log is unavailable")

    monkeypatch.setattr(audit_queries, "insert_entry", refuse)
    with engine_on(db_url) as engine:
        with pytest.raises(RuntimeError):
            versions.publish(engine, parcel(), by=TEST_ACTOR)
        with pytest.raises(RuntimeError):
            api_keys.create_key(engine, role="viewer", name="k", by=TEST_ACTOR)
        assert versions.list_machines(engine, include_retired=True) == []
        assert api_keys.list_keys(engine, include_revoked=True) == []
    assert audit_rows(db_url) == []
