"""The dashboard over HTTP, on PostgreSQL and SQLite: every page renders, roles are enforced by
the server whatever the page shows, forms need their CSRF token and this site's origin, the
login cookie's flags, bulk changes preview then apply and are audited, and no page carries an
inline script. (The browser tests in ``tests/browser`` drive the same pages in Chromium.)"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from pystator.api.dashboard.render import CONTENT_SECURITY_POLICY
from pystator.api.dashboard.session import CSRF_COOKIE, SESSION_COOKIE
from tests.support.api_clients import (
    LOOPBACK,
    MACHINE,
    client,
    create_key,
    drain,
    parcel,
    set_status,
)

pytestmark = pytest.mark.integration

PAGES = (
    "/ui",
    "/ui/overview/live",
    "/ui/events",
    "/ui/events/rows?status=dead",
    "/ui/events/1",
    "/ui/dead",
    "/ui/idempotency?key=k-1",
    f"/ui/entities?q=p&machine={MACHINE}",
    f"/ui/entities/{MACHINE}/p0",
    "/ui/machines",
    f"/ui/machines/{MACHINE}",
    "/ui/actions?status=pending",
    "/ui/audit",
    "/ui/webhooks",
    "/ui/login",
    "/ui/bulk?kind=events&operation=retry&status=dead",
)
INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*application/json)[^>]*>", re.I)


@pytest.fixture(params=["postgresql", "sqlite"])
def db_url(request: pytest.FixtureRequest) -> str:
    name = "pg_migrated_url" if request.param == "postgresql" else "sqlite_migrated_url"
    return str(request.getfixturevalue(name))


@pytest.fixture
def seeded(db_url: str) -> str:
    """A stored machine, five events (two dead, one repeated key) and a drained fleet."""
    with client(db_url) as local:
        assert local.post("/api/v1/machines", json={"config": parcel()}).status_code == 201
        for n in range(5):
            event = {"machine": MACHINE, "entity_id": f"p{n}", "trigger": "ship"}
            if n == 0:
                event["idempotency_key"] = "k-1"
            assert local.post("/api/v1/events", json=event).status_code == 201
        again = {"machine": MACHINE, "entity_id": "p0", "trigger": "ship", "idempotency_key": "k-1"}
        assert local.post("/api/v1/events", json=again).status_code == 200
    drain(db_url)
    set_status(db_url, [4, 5], "dead", error="carrier API down")
    return db_url


def browser_client(db_url: str, role: str | None) -> Iterator[TestClient]:
    """A client that holds cookies like a browser, logged in as ``role`` (None: loopback)."""
    with client(db_url) as ui:
        if role is not None:
            key = create_key(db_url, role)
            ui.get("/ui/login")
            response = ui.post(
                "/ui/login",
                data={"token": key, "next": "/ui", "csrf_token": ui.cookies[CSRF_COOKIE]},
                follow_redirects=False,
            )
            assert response.status_code == 303, response.text
        yield ui


@pytest.fixture
def operator(seeded: str) -> Iterator[TestClient]:
    yield from browser_client(seeded, "operator")


def csrf(ui: TestClient) -> str:
    if CSRF_COOKIE not in ui.cookies:
        ui.get("/ui/login")
    return str(ui.cookies[CSRF_COOKIE])


def test_every_page_renders_with_the_security_headers_and_no_inline_script(
    seeded: str,
) -> None:
    for ui in browser_client(seeded, None):  # loopback without auth: the local admin
        for path in PAGES:
            response = ui.get(path)
            assert response.status_code == 200, (path, response.text[:500])
            assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
            assert response.headers["x-frame-options"] == "DENY"
            assert not INLINE_SCRIPT.search(response.text), path
        assert ui.get("/ui/events/999999").status_code == 404
        assert "no event with id 999999" in ui.get("/ui/events/999999").text
        assert ui.get("/ui/static/vendor/htmx-2.0.11.min.js").status_code == 200


def test_login_sets_a_strict_httponly_cookie_and_a_bad_key_is_refused(seeded: str) -> None:
    create_key(seeded, "viewer")  # auth is configured from now on
    with client(seeded) as ui:
        assert ui.get("/ui").status_code == 401  # the login form, in place
        assert 'name="token"' in ui.get("/ui/events").text
        token = csrf(ui)
        wrong = ui.post("/ui/login", data={"token": "psk_nope", "csrf_token": token})
        assert wrong.status_code == 401 and "unknown or revoked" in wrong.text
        key = create_key(seeded, "viewer")
        ok = ui.post(
            "/ui/login",
            data={"token": key, "next": "/ui/dead", "csrf_token": token},
            follow_redirects=False,
        )
        assert ok.status_code == 303 and ok.headers["location"] == "/ui/dead"
        cookie = next(
            c for c in ok.headers.get_list("set-cookie") if c.startswith(SESSION_COOKIE + "=")
        )
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/ui" in cookie
        assert ui.get("/ui/dead").status_code == 200
        evil = ui.post(
            "/ui/login",
            data={"token": key, "next": "https://evil.example/", "csrf_token": token},
            follow_redirects=False,
        )
        assert evil.headers["location"] == "/ui"  # never sent to another site
        out = ui.post("/ui/logout", data={"csrf_token": token}, follow_redirects=False)
        assert out.status_code == 303
        assert ui.get("/ui").status_code == 401


def test_a_viewer_sees_no_mutating_control_and_the_server_refuses_its_posts(seeded: str) -> None:
    for ui in browser_client(seeded, "viewer"):
        for path in ("/ui/events/4", "/ui/dead", "/ui/events?status=dead&machine=parcel"):
            page = ui.get(path).text
            assert 'data-testid="retry"' not in page and 'data-testid="bulk-retry"' not in page
        token = csrf(ui)
        for path, data in (
            ("/ui/events/4/retry", {}),
            ("/ui/events/4/discard", {}),
            ("/ui/bulk", {"kind": "events", "operation": "retry", "status": "dead"}),
        ):
            refused = ui.post(path, data={**data, "csrf_token": token})
            assert refused.status_code == 403, path
            assert "needs the operator role" in refused.text
        assert ui.get("/ui/audit").status_code == 403  # operators and admins read it
        preview = ui.get("/ui/bulk?kind=events&operation=retry&status=dead")
        assert 'data-testid="confirm"' not in preview.text
        assert 'data-testid="matched">2<' in preview.text  # the count is not a secret


def test_forms_need_their_csrf_token_and_this_sites_origin(operator: TestClient) -> None:
    token = csrf(operator)
    assert operator.post("/ui/events/4/retry", data={}).status_code == 403
    assert operator.post("/ui/events/4/retry", data={"csrf_token": "forged"}).status_code == 403
    cross = operator.post(
        "/ui/events/4/retry",
        data={"csrf_token": token},
        headers={"origin": "https://evil.example"},
    )
    assert cross.status_code == 403 and "posted from https://evil.example" in cross.text
    site = operator.post(
        "/ui/events/4/retry", data={"csrf_token": token}, headers={"sec-fetch-site": "cross-site"}
    )
    assert site.status_code == 403
    same = operator.post(
        "/ui/events/4/retry",
        data={"csrf_token": token},
        headers={"origin": LOOPBACK, "sec-fetch-site": "same-origin"},
        follow_redirects=False,
    )
    assert same.status_code == 303 and same.headers["location"] == "/ui/events/4?done=retried"


def test_bulk_changes_preview_then_apply_and_are_audited(operator: TestClient) -> None:
    query = "kind=events&operation=retry&status=dead&error=carrier"
    preview = operator.get(f"/ui/bulk?{query}")
    assert 'data-testid="matched">2<' in preview.text
    assert operator.get("/ui/events?status=dead").text.count("data-event-id=") == 2  # unchanged
    done = operator.post(
        "/ui/bulk",
        data={
            "csrf_token": csrf(operator),
            "kind": "events",
            "operation": "retry",
            "status": "dead",
            "error": "carrier",
            "limit": "1",
        },
    )
    assert done.status_code == 200
    assert 'data-testid="affected">1<' in done.text and "1 more matched" in done.text
    nothing = operator.post(
        "/ui/bulk", data={"csrf_token": csrf(operator), "kind": "events", "operation": "retry"}
    )
    assert nothing.status_code == 422 and "never means everything" in nothing.text
    page = operator.get("/ui/audit?route=/ui/bulk").text
    assert 'data-route="/ui/bulk"' in page and '"error": "carrier"' in page


def test_the_idempotency_page_counts_repeats(operator: TestClient) -> None:
    page = operator.get("/ui/idempotency?key=k-1").text
    assert re.search(r'data-testid="submitted">2<', page)
    assert re.search(r'data-testid="duplicates">1<', page)
    unknown = operator.get("/ui/idempotency?key=unknown").text
    assert 'data-testid="key-unknown"' in unknown


def test_bad_filter_values_are_shown_not_queried(operator: TestClient) -> None:
    page = operator.get("/ui/events?status=bogus&created_after=yesterday")
    assert page.status_code == 200
    assert "status: &#39;bogus&#39; is not one of" in page.text
    assert "created_after: &#39;yesterday&#39; is not a time" in page.text


def test_the_playground_validates_and_processes_without_storing(operator: TestClient) -> None:
    token = csrf(operator)
    ok = operator.post(
        f"/ui/machines/{MACHINE}/playground",
        data={"csrf_token": token, "definition": "", "state": "created", "trigger": "ship"},
    )
    assert 'data-testid="pg-valid"' in ok.text and "shipped" in ok.text
    bad = operator.post(
        f"/ui/machines/{MACHINE}/playground",
        data={"csrf_token": token, "definition": "meta: {machine_name: x}\nstates: []"},
    )
    assert 'data-testid="pg-problems"' in bad.text


def test_metrics_are_public_and_count_the_fleet(seeded: str) -> None:
    create_key(seeded, "viewer")  # auth on: /metrics stays readable by scrapers
    with client(seeded) as anonymous:
        text = anonymous.get("/metrics").text
    assert f'pystator_dead_events{{machine="{MACHINE}"}} 2.0' in text
    assert "pystator_backlog_due 0.0" in text
