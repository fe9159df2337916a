"""Auth through the real app: every route x {anonymous, viewer, operator, admin}; with auth off,
every route (API and dashboard) x {direct local requests, each proxy header, a foreign Host}
through a real server; API keys and JWTs; the OpenAPI declares the 401s; the API refuses to start
on 0.0.0.0 without auth."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from pystator.api.dashboard.pages import PAGES
from pystator.api.dashboard.render import UI_PREFIX
from pystator.api.dashboard.session import current_user
from pystator.api.deps import AuditTrail, RoleCheck, audit_trail
from pystator.api.routes import ROUTERS
from tests.support import worker_processes as procs
from tests.support.api_clients import JWT_SECRET, bearer, client, create_key, token
from tests.support.api_server import ApiServer, running_api
from tests.support.ports import free_port, port_open
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

#: The contract: the role each route needs (None: public). A new route must be added here.
EXPECTED: dict[tuple[str, str], str | None] = {
    ("GET", "/"): None,
    ("GET", "/health"): None,
    ("GET", "/ready"): None,
    ("GET", "/metrics"): None,
    ("GET", "/api/v1/auth/me"): "viewer",
    ("GET", "/api/v1/api-keys"): "admin",
    ("POST", "/api/v1/api-keys"): "admin",
    ("DELETE", "/api/v1/api-keys/{key_id}"): "admin",
    ("POST", "/api/v1/validate"): "viewer",
    ("POST", "/api/v1/machines/validate"): "viewer",
    ("POST", "/api/v1/process"): "viewer",
    ("GET", "/api/v1/machines"): "viewer",
    ("POST", "/api/v1/machines"): "admin",
    ("GET", "/api/v1/machines/{name}"): "viewer",
    ("PUT", "/api/v1/machines/{name}"): "admin",
    ("DELETE", "/api/v1/machines/{name}"): "admin",
    ("POST", "/api/v1/machines/{name}/compatibility"): "viewer",
    ("POST", "/api/v1/machines/{name}/replay"): "operator",
    ("GET", "/api/v1/discovery/shadow/{machine_name}"): "viewer",
    ("POST", "/api/v1/discovery/shadow/{machine_name}"): "operator",
    ("POST", "/api/v1/discovery/shadow/{machine_name}/stop"): "operator",
    ("POST", "/api/v1/discovery/shadow/{machine_name}/promote"): "operator",
    ("POST", "/api/v1/events"): "operator",
    ("POST", "/api/v1/events/batch"): "operator",
    ("GET", "/api/v1/events"): "viewer",
    ("GET", "/api/v1/events/{event_id}"): "viewer",
    ("POST", "/api/v1/events/retry"): "operator",
    ("POST", "/api/v1/events/discard"): "operator",
    ("GET", "/api/v1/entities/{machine}/{entity_id}"): "viewer",
    ("GET", "/api/v1/transitions"): "viewer",
    ("GET", "/api/v1/actions"): "viewer",
    ("POST", "/api/v1/actions/retry"): "operator",
    ("POST", "/api/v1/actions/discard"): "operator",
    ("GET", "/api/v1/stats"): "viewer",
    ("GET", "/api/v1/workers"): "viewer",
    ("GET", "/api/v1/audit"): "operator",
    # one entity (issue 28b), bulk, observability, catalog, settings
    ("POST", "/api/v1/entities/bulk/create"): "operator",
    ("POST", "/api/v1/entities/bulk/events"): "operator",
    ("POST", "/api/v1/entities/{entity_id}/create"): "operator",
    ("POST", "/api/v1/entities/{entity_id}/events"): "operator",
    ("POST", "/api/v1/entities/{entity_id}/apply-data"): "operator",
    ("POST", "/api/v1/entities/{entity_id}/dry-run"): "viewer",
    ("GET", "/api/v1/entities/{entity_id}/state"): "viewer",
    ("GET", "/api/v1/entities/{entity_id}/snapshot"): "viewer",
    ("GET", "/api/v1/entities/{entity_id}/history"): "viewer",
    ("GET", "/api/v1/entities/{entity_id}/timeline"): "viewer",
    ("GET", "/api/v1/entities/{entity_id}/export"): "viewer",
    ("POST", "/api/v1/entities/{entity_id}/import"): "admin",
    ("POST", "/api/v1/entities/{entity_id}/purge"): "admin",
    ("POST", "/api/v1/entities/{entity_id}/archive"): "admin",
    ("GET", "/api/v1/observability/summary"): "viewer",
    ("GET", "/api/v1/observability/transitions"): "viewer",
    ("GET", "/api/v1/observability/worker-events"): "viewer",
    ("GET", "/api/v1/observability/state-metrics"): "viewer",
    ("GET", "/api/v1/catalog/builtins"): None,
    ("GET", "/api/v1/settings"): "admin",
    # discovery (issue 26)
    ("POST", "/api/v1/discovery/observations"): "operator",
    ("POST", "/api/v1/discovery/candidates/preview"): "viewer",
    ("POST", "/api/v1/discovery/candidates/build"): "operator",
    ("GET", "/api/v1/discovery/candidates/{machine_name}"): "viewer",
    ("GET", "/api/v1/discovery/candidates/{machine_name}/latest"): "viewer",
    ("GET", "/api/v1/discovery/candidates/{machine_name}/diff"): "viewer",
    ("GET", "/api/v1/discovery/candidates/{machine_name}/{version}"): "viewer",
    ("POST", "/api/v1/discovery/candidates/{machine_name}/{version}/register"): "admin",
    ("POST", "/api/v1/discovery/machines/{machine_name}/drafts"): "operator",
    ("GET", "/api/v1/discovery/machines/{machine_name}/drafts/{draft_id}"): "viewer",
    ("PATCH", "/api/v1/discovery/machines/{machine_name}/drafts/{draft_id}"): "operator",
    ("DELETE", "/api/v1/discovery/machines/{machine_name}/drafts/{draft_id}"): "operator",
    ("POST", "/api/v1/discovery/machines/{machine_name}/drafts/{draft_id}/preview"): "viewer",
    ("POST", "/api/v1/discovery/machines/{machine_name}/drafts/{draft_id}/build"): "operator",
    ("GET", "/api/v1/settings/discovery-config"): "admin",
    ("POST", "/api/v1/settings/test-discovery-database"): "admin",
    # live streams (issue 28c)
    ("GET", "/api/v1/transitions/stream"): "viewer",
    ("GET", "/api/v1/events/stream"): "viewer",
    # webhooks (issue 28c)
    ("GET", "/api/v1/webhooks"): "viewer",
    ("POST", "/api/v1/webhooks"): "admin",
    ("GET", "/api/v1/webhooks/deliveries"): "viewer",
    ("GET", "/api/v1/webhooks/{webhook_id}"): "viewer",
    ("PUT", "/api/v1/webhooks/{webhook_id}"): "admin",
    ("DELETE", "/api/v1/webhooks/{webhook_id}"): "admin",
    ("POST", "/api/v1/webhooks/{webhook_id}/test"): "operator",
    ("GET", "/api/v1/webhooks/{webhook_id}/deliveries"): "viewer",
}
#: Routes that change nothing (they compute) although they are POSTs.
READ_ONLY_POSTS = {
    "/api/v1/validate",
    "/api/v1/machines/validate",
    "/api/v1/process",
    "/api/v1/entities/{entity_id}/dry-run",
    "/api/v1/machines/{name}/compatibility",
    "/api/v1/machines/{name}/replay",
    "/api/v1/discovery/candidates/preview",
    "/api/v1/discovery/machines/{machine_name}/drafts/{draft_id}/preview",
    "/api/v1/settings/test-discovery-database",
}
RANK = {"viewer": 0, "operator": 1, "admin": 2}


def _calls(dependant: object) -> list[object]:
    found = []
    for dep in getattr(dependant, "dependencies", []):
        found.append(dep.call)
        found += _calls(dep)
    return found


def _route_table() -> dict[tuple[str, str], tuple[str | None, bool]]:
    """(method, path) -> (role its dependencies require, whether it writes an audit row)."""
    table = {}
    for router in ROUTERS:
        for route in router.routes:
            assert isinstance(route, APIRoute)
            calls = _calls(route.dependant)
            roles = [c.role.value for c in calls if isinstance(c, RoleCheck)]
            for method in route.methods:
                table[(method, route.path)] = (roles[0] if roles else None, audit_trail in calls)
    return table


def _url(path: str) -> str:
    url = re.sub(r"\{[^}]+\}", "1", path)
    return f"{url}?max_seconds=0" if url.endswith("/stream") else url  # an SSE stream ends


def test_the_route_table_is_the_contract() -> None:
    table = _route_table()
    assert {key: role for key, (role, _) in table.items()} == EXPECTED
    for (method, path), (_role, audited) in table.items():
        mutation = method in ("POST", "PUT", "PATCH", "DELETE") and path not in READ_ONLY_POSTS
        assert audited == mutation, f"{method} {path}: audited={audited}"
    assert AuditTrail.write  # the audited routes write through this


@pytest.fixture
def secured(pg_migrated_url: str) -> Iterator[tuple[TestClient, dict[str, dict[str, str]]]]:
    keys = {role: create_key(pg_migrated_url, role) for role in RANK}
    with client(pg_migrated_url, api_jwt_secret=JWT_SECRET) as api:
        headers = {"anonymous": {}} | {role: bearer(keys[role]) for role in RANK}
        yield api, headers


@pytest.mark.parametrize("caller", ["anonymous", "viewer", "operator", "admin"])
def test_auth_matrix_every_route_every_role(
    secured: tuple[TestClient, dict[str, dict[str, str]]], caller: str
) -> None:
    api, headers = secured
    failures = []
    for (method, path), needed in sorted(EXPECTED.items()):
        body = {} if method in ("POST", "PUT", "PATCH") else None
        response = api.request(method, _url(path), json=body, headers=headers[caller])
        if needed is None:
            expected_ok = True
        elif caller == "anonymous":
            expected_ok = False
            if response.status_code != 401:
                failures.append(f"{caller} {method} {path}: {response.status_code} != 401")
        elif RANK[caller] < RANK[needed]:
            expected_ok = False
            if response.status_code != 403:
                failures.append(f"{caller} {method} {path}: {response.status_code} != 403")
        else:
            expected_ok = True
        if expected_ok and response.status_code in (401, 403):
            failures.append(f"{caller} {method} {path}: refused with {response.status_code}")
        if response.status_code in (401, 403):
            assert response.headers["content-type"] == "application/problem+json"
    assert failures == []


#: With auth off: how a request arrives -> the headers it carries (``{port}`` filled in) and the
#: ``reason`` of its 401 (None: it is the local admin).
ARRIVALS: dict[str, tuple[dict[str, str], str | None]] = {
    "localhost": ({"Host": "localhost:{port}"}, None),
    "127.0.0.1": ({"Host": "127.0.0.1:{port}"}, None),
    "[::1]": ({"Host": "[::1]:{port}"}, None),
    "Forwarded": ({"Forwarded": "for=203.0.113.5"}, "proxy"),
    "X-Forwarded-For": ({"X-Forwarded-For": "203.0.113.5"}, "proxy"),
    "X-Forwarded-Host": ({"X-Forwarded-Host": "pystator.example.com"}, "proxy"),
    "X-Real-IP": ({"X-Real-IP": "203.0.113.5"}, "proxy"),
    "foreign Host": ({"Host": "evil.example:{port}"}, "host"),
}


def _dashboard_routes() -> dict[tuple[str, str], bool]:
    """(method, path) of every dashboard route -> whether it needs a signed-in user."""
    table = {}
    for pages in PAGES:
        for route in pages.routes:
            assert isinstance(route, APIRoute)
            for method in route.methods:
                table[(method, UI_PREFIX + route.path)] = current_user in _calls(route.dependant)
    return table


@pytest.fixture(scope="module")
def unsecured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    with running_api(tmp_path_factory.mktemp("unsecured")) as server:
        yield server


@pytest.mark.parametrize("arrival", list(ARRIVALS))
def test_auth_off_matrix_every_route_every_arrival(unsecured: ApiServer, arrival: str) -> None:
    template, reason = ARRIVALS[arrival]
    headers = {k: v.format(port=unsecured.port) for k, v in template.items()}
    failures = []
    for (method, path), needed in sorted(EXPECTED.items()):
        body = {} if method in ("POST", "PUT", "PATCH") else None
        response = unsecured.request(method, _url(path), headers, json=body)
        status = response.status_code
        if needed is None or reason is None:
            if status in (401, 403):
                failures.append(f"{arrival} {method} {path}: refused with {status}")
        elif status != 401 or response.json().get("reason") != reason:
            failures.append(f"{arrival} {method} {path}: {status} {response.text[:120]}")
    for (method, path), needs_user in sorted(_dashboard_routes().items()):
        response = unsecured.request(method, _url(path), headers, data={})
        status = response.status_code
        if needs_user and reason is not None:
            if status != 401 or "Log in" not in response.text:
                failures.append(f"{arrival} {method} {path}: {status}, not the login form")
        elif status == 401:
            failures.append(f"{arrival} {method} {path}: refused with 401")
        elif method == "POST" and status != 403:  # no CSRF token: refused after the user check
            failures.append(f"{arrival} {method} {path}: {status} without a CSRF token")
    assert failures == []
    assert unsecured.request("GET", "/api/v1/api-keys").json() == []  # auth is still off


def test_the_openapi_declares_401_wherever_it_can_be_answered(unsecured: ApiServer) -> None:
    spec = unsecured.request("GET", "/openapi.json").json()
    for (method, path), needed in EXPECTED.items():
        operation = spec["paths"][path][method.lower()]
        if needed is not None:
            assert "401" in operation["responses"], f"{method} {path}"
            assert "API key or JWT" in operation["responses"]["401"]["description"]
    for path in ("/api/v1/machines", "/api/v1/validate", "/api/v1/machines/validate"):
        content = spec["paths"][path]["post"]["requestBody"]["content"]
        assert set(content) == {"application/json", "application/yaml"}


def test_jwt_tokens_and_key_lifecycle(pg_migrated_url: str) -> None:
    with client(pg_migrated_url, api_jwt_secret=JWT_SECRET) as api:
        me = api.get("/api/v1/auth/me", headers=bearer(token("operator", "alice")))
        assert me.json() == {"name": "alice", "role": "operator", "via": "jwt"}
        wrong = api.get("/api/v1/auth/me", headers=bearer(token("admin")[:-4] + "AAAA"))
        assert wrong.status_code == 401 and wrong.headers["www-authenticate"] == "Bearer"
        admin = bearer(token("admin"))
        created = api.post("/api/v1/api-keys", json={"role": "viewer", "name": "ci"}, headers=admin)
        assert created.status_code == 201
        key = created.json()["key"]
        assert key.startswith("psk_") and created.json()["prefix"] == key[:12]
        listed = api.get("/api/v1/api-keys", headers=admin).json()
        assert [k["name"] for k in listed] == ["ci"] and "key" not in listed[0]
        assert api.get("/api/v1/auth/me", headers={"X-API-Key": key}).json()["role"] == "viewer"
        assert api.get("/api/v1/stats", headers=bearer(key)).status_code == 200
        revoked = api.delete(f"/api/v1/api-keys/{created.json()['id']}", headers=admin)
        assert revoked.status_code == 200
        assert api.get("/api/v1/auth/me", headers=bearer(key)).status_code == 401
        assert (
            api.delete(f"/api/v1/api-keys/{created.json()['id']}", headers=admin).status_code == 404
        )
        audit = api.get("/api/v1/audit", headers=admin).json()["items"]
        assert [(a["method"], a["route"], a["principal"]) for a in audit] == [
            ("DELETE", "/api/v1/api-keys/{key_id}", "tester"),
            ("POST", "/api/v1/api-keys", "tester"),
        ]


def test_auth_is_off_only_on_loopback(sqlite_migrated_url: str) -> None:
    with client(sqlite_migrated_url) as local:
        assert local.get("/api/v1/auth/me").json() == {
            "name": "local",
            "role": "admin",
            "via": "loopback",
        }
    # the same unconfigured server, reached on another address: refused
    with client(sqlite_migrated_url, base_url="http://10.1.2.3:8000") as remote:
        refused = remote.get("/api/v1/auth/me")
        assert refused.status_code == 401
        assert "not configured" in refused.json()["detail"]
        assert remote.get("/health").status_code == 200
    # once a key exists, loopback needs credentials too
    create_key(sqlite_migrated_url, "viewer")
    with client(sqlite_migrated_url) as local:
        assert local.get("/api/v1/auth/me").status_code == 401


def _api(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return procs.start(args, env, log)


def test_the_api_starts_on_loopback_and_refuses_0000_without_auth(
    sqlite_migrated_url: str, tmp_path: Path
) -> None:
    env = {"PYSTATOR_DATABASE_URL": sqlite_migrated_url, "PYSTATOR_LOG_FORMAT": "json"}
    refused = procs.run(["api", "--host", "0.0.0.0", "--port", str(free_port())], env)
    assert refused.returncode == 2
    assert "refusing to serve on 0.0.0.0" in refused.stderr
    # uvicorn started directly: the app's start-up refuses the same bind
    port = free_port()
    direct = subprocess.run(
        [
            procs.pystator_cmd()[0].replace("pystator", "uvicorn"),
            "pystator.api.main:app",
            "--host",
            "0.0.0.0",
            "--port",
            str(port),
        ],
        env=procs.env_for({**env, "PYSTATOR_API_HOST": "0.0.0.0"}, clean=True),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert direct.returncode != 0 and "refusing to serve on 0.0.0.0" in direct.stderr

    port = free_port()
    local = _api(["api", "--port", str(port)], env, tmp_path / "local.log")
    try:
        wait_until(lambda: port_open(port), timeout=60, message="the API to listen")
        assert httpx.get(f"http://127.0.0.1:{port}/health").json() == {"status": "ok"}
        assert httpx.get(f"http://127.0.0.1:{port}/api/v1/auth/me").json()["via"] == "loopback"
    finally:
        procs.stop(local)

    port = free_port()
    secured = _api(
        ["api", "--host", "0.0.0.0", "--port", str(port)],
        {**env, "PYSTATOR_API_JWT_SECRET": JWT_SECRET},
        tmp_path / "secured.log",
    )
    try:
        wait_until(lambda: port_open(port), timeout=60, message="the secured API to listen")
        assert httpx.get(f"http://127.0.0.1:{port}/api/v1/auth/me").status_code == 401
        me = httpx.get(f"http://127.0.0.1:{port}/api/v1/auth/me", headers=bearer(token("viewer")))
        assert me.json()["via"] == "jwt"
    finally:
        procs.stop(secured)
