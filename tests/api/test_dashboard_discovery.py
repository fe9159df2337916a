"""The dashboard's Discovery pages over HTTP: the index, a machine's candidate next to the active
machine (unexpected edges red, unused ones dashed, the edge table), the build form (operators
only, CSRF, audited). The browser test draws the same page in Chromium."""

from __future__ import annotations

import re

import pytest

from pystator.api.dashboard.pages.discovery import UNEXPECTED_STYLE, UNUSED_STYLE
from pystator.api.dashboard.session import CSRF_COOKIE, SESSION_COOKIE
from tests.api.test_api_discovery import feed
from tests.support.api_clients import MACHINE, client, create_key, parcel

pytestmark = pytest.mark.integration


def test_the_discovery_pages(sqlite_migrated_url: str) -> None:
    with client(sqlite_migrated_url) as api:
        assert api.post("/api/v1/machines", json={"config": parcel()}).status_code == 201
        feed(api)
        empty = api.get(f"/ui/discovery/{MACHINE}")
        assert empty.status_code == 200 and 'data-testid="no-candidate"' in empty.text
        page = api.get("/ui/discovery")
        assert page.status_code == 200 and f"/ui/discovery/{MACHINE}" in page.text

        csrf = api.cookies.get(CSRF_COOKIE) or ""
        forged = api.post(f"/ui/discovery/{MACHINE}/build", data={"min_edge_count": "1"})
        assert forged.status_code == 403
        built = api.post(
            f"/ui/discovery/{MACHINE}/build",
            data={"min_edge_count": "1", "source": "observations", "csrf_token": csrf},
            follow_redirects=False,
        )
        assert built.status_code == 303, built.text
        assert built.headers["location"] == f"/ui/discovery/{MACHINE}?version=1&done=built"
        shown = api.get(built.headers["location"]).text
        assert "Built candidate v1" in shown
        candidate, active = re.findall(r'<pre class="mermaid"[^>]*>(.*?)</pre>', shown, re.S)
        assert "5 · 100%" in candidate and UNEXPECTED_STYLE in candidate
        assert "linkStyle 1 " in candidate  # delivered -> created, the second kept edge
        assert "-.-&gt;|&#34;unused&#34;|" in active and UNUSED_STYLE in active
        assert 'data-edge="delivered->created"' in shown
        audit = api.get("/api/v1/audit").json()["items"]
        assert audit[0]["route"] == "/ui/discovery/{name}/build"

    viewer = create_key(sqlite_migrated_url, "viewer")
    with client(sqlite_migrated_url) as api:
        api.cookies.set(SESSION_COOKIE, viewer)
        page = api.get(f"/ui/discovery/{MACHINE}")
        assert page.status_code == 200 and 'data-testid="build"' not in page.text
