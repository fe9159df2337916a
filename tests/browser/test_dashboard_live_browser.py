"""The dashboard's live updates in a real headless Chromium (SQLite and PostgreSQL): an entity's
page and the overview subscribe to the transition stream, and a transition committed by the
fleet shows on the open page without a reload."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.api_clients import MACHINE, drain, parcel
from tests.support.browser import by_css
from tests.support.live_app import LiveApp, live_app
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.browser]


@pytest.fixture(params=["postgresql", "sqlite"])
def db_url(request: pytest.FixtureRequest) -> str:
    name = "pg_migrated_url" if request.param == "postgresql" else "sqlite_migrated_url"
    return str(request.getfixturevalue(name))


@pytest.fixture
def app(db_url: str) -> Iterator[LiveApp]:
    with live_app(db_url) as served:  # auth off: loopback requests are the local admin
        with served.client() as http:
            assert http.post("/api/v1/machines", json={"config": parcel()}).status_code == 201
            event = {"machine": MACHINE, "entity_id": "p1", "trigger": "ship"}
            assert http.post("/api/v1/events", json=event).status_code == 201
        drain(db_url)
        yield served


def _submit(app: LiveApp, trigger: str) -> None:
    with app.client() as http:
        event = {"machine": MACHINE, "entity_id": "p1", "trigger": trigger}
        assert http.post("/api/v1/events", json=event).status_code == 201


def _text(browser: Any, testid: str) -> str | None:
    """An element's text now (read in one step: the live region may be swapped meanwhile)."""
    script = (
        f"var e = document.querySelector('[data-testid=\"{testid}\"]'); return e && e.textContent;"
    )
    text = browser.execute_script(script)
    return text.strip() if isinstance(text, str) else None


def test_an_open_entity_page_shows_a_new_transition_without_a_reload(
    app: LiveApp, db_url: str, browser: Any
) -> None:
    browser.get(f"{app.base}/ui/entities/{MACHINE}/p1")
    assert by_css(browser, '[data-testid="entity-state"]').text == "shipped"
    wait_until(
        lambda: (
            browser.find_element("css selector", "body").get_attribute("data-stream-state")
            == "open"
        ),
        message="the page's stream to open",
    )
    browser.execute_script("window.__notReloaded = true;")
    _submit(app, "deliver")
    drain(db_url)
    wait_until(
        lambda: _text(browser, "entity-state") == "delivered",
        message="the new state on the open page",
    )
    assert browser.execute_script("return window.__notReloaded === true;")
    assert _text(browser, "entity-version") == "2"
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == []
