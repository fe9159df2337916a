"""The local-admin rule's parts: reading a ``Host`` header, the ``PYSTATOR_API_LOCAL_HOSTS``
setting, and which arrivals may act as ``local`` (the HTTP tests are in
tests/integration/test_local_admin.py)."""

from __future__ import annotations

import pytest

from pystator.api.auth import Arrival, Authenticator, host_name
from pystator.config.settings import Settings, load_settings
from pystator.fsm_core.errors import SettingsError


@pytest.mark.parametrize(
    "header, name",
    [
        ("localhost:8000", "localhost"),
        ("LocalHost", "localhost"),
        ("127.0.0.1:1", "127.0.0.1"),
        ("[::1]:8000", "[::1]"),
        ("[::1]", "[::1]"),
        ("evil.example:8000", "evil.example"),
        ("::1", None),  # an IPv6 address needs its brackets
        ("localhost:", None),
        ("localhost:http", None),
        ("[::1]:80:80", None),
        ("[::1", None),
        ("localhost.", None),
        ("", None),
        (None, None),
    ],
)
def test_host_name(header: str | None, name: str | None) -> None:
    assert host_name(header) == name


def test_local_hosts_setting() -> None:
    settings = load_settings({"PYSTATOR_API_LOCAL_HOSTS": " devbox.internal, Pystator.LOCAL "})
    assert settings.local_host_names == ("devbox.internal", "pystator.local")
    assert Settings().local_host_names == ()


@pytest.mark.parametrize("bad", ["http://devbox", "devbox:8000", "*.internal", "a..b", "x,,y"])
def test_a_malformed_local_host_fails_with_the_setting_name(bad: str) -> None:
    with pytest.raises(SettingsError, match=r"^PYSTATOR_API_LOCAL_HOSTS: '.*' is not a host name"):
        Settings(api_local_hosts=bad)


AUTH = Authenticator(None, local_hosts=("devbox.internal",))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "arrival, reason",
    [
        (Arrival(server_host="127.0.0.1", host="localhost:8000"), None),
        (Arrival(server_host="::1", host="[::1]:8000"), None),
        (Arrival(server_host="127.0.0.5", host="127.0.0.1"), None),
        (Arrival(server_host="127.0.0.1", host="devbox.internal:9000"), None),
        (Arrival(server_host="10.0.0.7", host="localhost:8000"), "address"),
        (Arrival(server_host=None, host="localhost"), "address"),
        (
            Arrival(server_host="127.0.0.1", host="localhost", proxy_headers=("X-Real-IP",)),
            "proxy",
        ),
        (Arrival(server_host="127.0.0.1", host="evil.example"), "host"),
        (Arrival(server_host="127.0.0.1", host=None), "host"),
    ],
)
def test_who_may_act_as_the_local_admin(arrival: Arrival, reason: str | None) -> None:
    refusal = AUTH.local_refusal(arrival)
    assert (refusal.details["reason"] if refusal else None) == reason
