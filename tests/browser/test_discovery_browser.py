"""The dashboard's Discovery page in a real headless Chromium against a real ``pystator api``:
observations sent over HTTP, a candidate built from the page's form, both diagrams drawn by the
vendored Mermaid with the unexpected edge in red and the unused one dashed, and a screenshot for
the docs (``discovery.png``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pystator.api.dashboard.pages.discovery import UNEXPECTED_STYLE, UNUSED_STYLE
from tests.api.test_api_discovery import walk
from tests.support.api_clients import MACHINE, parcel
from tests.support.api_server import ApiServer, running_api
from tests.support.browser import all_css, by_css, shoot

pytestmark = [pytest.mark.integration, pytest.mark.browser]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ApiServer]:
    with running_api(tmp_path) as api:
        yield api


def observations() -> list[dict[str, Any]]:
    """Parcels shipped and delivered; some held first; a few sent back to created after
    delivery (the parcel machine does not allow that)."""
    items: list[dict[str, Any]] = []
    for n in range(40):
        path = ["created", "shipped", "delivered"]
        if n % 4 == 0:
            path.append("created")
        items += walk(f"p{n}", path)
    return items


def _colour(style: str) -> str:
    return style.split("stroke:")[1].split(",")[0]


def test_the_discovery_page_draws_the_candidate_next_to_the_active_machine(
    browser: Any, server: ApiServer, screenshot_dir: Path
) -> None:
    with server.client() as api:
        assert api.post("/api/v1/machines", json={"config": parcel()}).status_code == 201
        answer = api.post(
            "/api/v1/discovery/observations",
            json={"machine_name": MACHINE, "observations": observations()},
        )
        assert answer.json()["accepted"] == 130
    browser.get(f"{server.base}/ui/discovery")
    by_css(browser, f"a[href='/ui/discovery/{MACHINE}']").click()
    by_css(browser, "[data-testid=no-candidate]")
    by_css(browser, "input[name=min_edge_count]").send_keys("2")
    by_css(browser, "[data-testid=build-run]").click()
    assert "Built candidate v1" in by_css(browser, "[data-testid=flash]").text
    by_css(browser, "body[data-diagram=drawn]", timeout=60)
    candidate = by_css(browser, "[data-testid=candidate-diagram] svg")
    active = by_css(browser, "[data-testid=active-diagram] svg")
    assert "40 · 100%" in candidate.text and "10 · 100%" in candidate.text
    assert "unused" in active.text
    red = _colour(UNEXPECTED_STYLE)
    orange = _colour(UNUSED_STYLE)
    assert red in candidate.get_attribute("innerHTML")
    assert orange in active.get_attribute("innerHTML")
    rows = {row.get_attribute("data-edge"): row.text for row in all_css(browser, "[data-edge]")}
    assert "unexpected" in rows["delivered->created"]
    assert "allowed" in rows["created->shipped"]
    assert "held" in by_css(browser, "[data-testid=unused]").text
    errors = [e["message"] for e in browser.get_log("browser") if e.get("level") == "SEVERE"]
    assert errors == []
    shoot(browser, screenshot_dir, "discovery")
