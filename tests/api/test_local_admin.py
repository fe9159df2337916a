"""Auth off, through a real ``pystator api`` on a loopback port: a request is the local admin
only when it is made on this host directly (no proxy headers) and addressed to a local name;
a proxied request or a foreign ``Host`` (DNS rebinding) gets 401 saying why, and cannot create
the first key. Once a key exists the rules are the usual ones."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import worker_processes as procs
from tests.support.api_server import ApiServer, running_api
from tests.support.ports import free_port
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

LOCAL = {"name": "local", "role": "admin", "via": "loopback"}
#: The headers a reverse proxy adds, each as a proxy in front of the API would send it.
PROXIED = {
    "Forwarded": "for=203.0.113.5;proto=https",
    "X-Forwarded-For": "203.0.113.5",
    "X-Forwarded-Host": "pystator.example.com",
    "X-Real-IP": "203.0.113.5",
}
#: A name the operator lists in PYSTATOR_API_LOCAL_HOSTS.
LISTED = "devbox.internal"


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    with running_api(
        tmp_path_factory.mktemp("local-admin"), PYSTATOR_API_LOCAL_HOSTS=LISTED
    ) as server:
        yield server


def _problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    return body


@pytest.mark.parametrize(
    "host", ["localhost:{port}", "127.0.0.1:{port}", "[::1]:{port}", "LOCALHOST", LISTED]
)
def test_direct_requests_to_a_local_name_are_the_local_admin(api: ApiServer, host: str) -> None:
    headers = {"Host": host.format(port=api.port)}
    assert api.request("GET", "/api/v1/auth/me", headers).json() == LOCAL
    assert api.request("GET", "/api/v1/api-keys", headers).json() == []
    page = api.request("GET", "/ui", headers)
    assert page.status_code == 200 and "local" in page.text


@pytest.mark.parametrize("header", sorted(PROXIED))
def test_each_proxy_header_is_refused(api: ApiServer, header: str) -> None:
    headers = {header: PROXIED[header]}
    body = _problem(api.request("GET", "/api/v1/auth/me", headers), 401)
    assert str(body["detail"]).startswith("behind a proxy: configure an API key or JWT")
    assert (body["reason"], body["headers"]) == ("proxy", [header])
    refused = api.request("POST", "/api/v1/api-keys", headers, json={"name": "x", "role": "admin"})
    assert _problem(refused, 401)["reason"] == "proxy"
    page = api.request("GET", "/ui", headers)
    assert page.status_code == 401 and "behind a proxy: configure an API key or JWT" in page.text
    assert api.request("GET", "/api/v1/api-keys").json() == []  # nothing was created


@pytest.mark.parametrize("host", ["evil.example:{port}", "evil.example", "127.0.0.2:{port}"])
def test_a_foreign_host_is_refused_and_cannot_create_a_key(api: ApiServer, host: str) -> None:
    headers = {"Host": host.format(port=api.port)}
    body = _problem(api.request("GET", "/api/v1/auth/me", headers), 401)
    assert str(body["detail"]).startswith(f"Host '{headers['Host']}' is not a local name")
    assert (body["reason"], body["host"]) == ("host", headers["Host"])
    created = api.request("POST", "/api/v1/api-keys", headers, json={"name": "x", "role": "admin"})
    assert _problem(created, 401)["reason"] == "host"
    page = api.request("GET", "/ui", headers)
    assert page.status_code == 401 and "is not a local name" in page.text
    assert api.request("GET", "/ui/login", headers).status_code == 200  # the form itself
    assert api.request("GET", "/api/v1/api-keys").json() == []  # still no key: auth still off


@pytest.mark.parametrize("host", ["", "localhost:abc", "::1", "localhost:80:80", "[::1"])
def test_a_malformed_host_is_not_local(api: ApiServer, host: str) -> None:
    assert _problem(api.request("GET", "/api/v1/auth/me", {"Host": host}), 401)["reason"] == "host"


@pytest.mark.parametrize("media_type", ["text/plain", "application/x-www-form-urlencoded"])
def test_a_definition_a_cross_site_form_could_send_is_refused(
    api: ApiServer, media_type: str
) -> None:
    """A page on another site may post text/plain or a form to 127.0.0.1 without a CORS
    preflight (its Host is then local): the definition routes take only JSON and YAML."""
    config = '{"config": {"meta": {"machine_name": "planted"}, "states": [{"name": "a", "type": "initial"}]}}'
    for path in ("/api/v1/machines", "/api/v1/validate"):
        refused = api.request("POST", path, {"Content-Type": media_type}, content=config)
        assert _problem(refused, 415)["detail"].startswith(f"Content-Type '{media_type}'")
    assert api.request("GET", "/api/v1/machines").json() == []


def test_public_routes_answer_anyone(api: ApiServer) -> None:
    for headers in ({"Host": "evil.example"}, {"X-Forwarded-For": "203.0.113.5"}):
        assert api.request("GET", "/health", headers).json() == {"status": "ok"}


def test_the_start_up_log_says_auth_is_off_and_who_is_trusted(api: ApiServer) -> None:
    wait_until(lambda: "api_auth_off" in api.log_text(), timeout=30, message="the warning")
    line = next(line for line in api.log_text().splitlines() if "api_auth_off" in line)
    assert "auth is OFF" in line and '"level": "warning"' in line
    for part in ("loopback", "X-Forwarded-For", "localhost", "127.0.0.1", "[::1]", LISTED):
        assert part in line, part


def test_a_bad_local_hosts_setting_stops_the_start(tmp_path: Path) -> None:
    env = {
        "PYSTATOR_DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite'}",
        "PYSTATOR_API_LOCAL_HOSTS": "devbox, http://evil.example",
    }
    refused = procs.run(["api", "--port", str(free_port())], env)
    assert refused.returncode == 2
    assert "PYSTATOR_API_LOCAL_HOSTS: 'http://evil.example' is not a host name" in refused.stderr
    shown = procs.run(["config", "show"], {**env, "PYSTATOR_API_LOCAL_HOSTS": LISTED})
    assert shown.returncode == 0
    assert any(
        line.split()[:2] == ["PYSTATOR_API_LOCAL_HOSTS", LISTED]
        for line in shown.stdout.splitlines()
    )


def test_the_local_admin_creates_the_first_key_then_the_rules_are_the_usual_ones(
    tmp_path: Path,
) -> None:
    with running_api(tmp_path) as api:
        new = {"name": "operator", "role": "admin"}
        created = api.request("POST", "/api/v1/api-keys", {"Host": "localhost"}, json=new)
        assert created.status_code == 201, created.text
        key = {"X-API-Key": created.json()["key"]}
        me = {"name": f"key:{created.json()['id']}:operator", "role": "admin", "via": "key"}
        # no credentials: refused whoever asks, the local host included
        for headers in ({}, {"Host": "localhost"}, {"X-Forwarded-For": "203.0.113.5"}):
            body = _problem(api.request("GET", "/api/v1/auth/me", headers), 401)
            assert str(body["detail"]).startswith("credentials required")
        # with the key: accepted through a proxy and under any Host, as before this change
        for headers in (key, {**key, "X-Forwarded-For": "203.0.113.5"}, {**key, "Host": "x.y"}):
            assert api.request("GET", "/api/v1/auth/me", headers).json() == me
        page = api.request("GET", "/ui", {"Host": "localhost"})
        assert page.status_code == 401 and "is not a local name" not in page.text
