"""The documentation site in a real browser, and the tutorials' screenshots.

* The site ``pystator docs`` builds (the same function, the same strict build), served from a
  loopback port with no network: the home page's documentation map lists the sections in the
  map's order, each link opens its page, Mermaid diagrams render from the vendored copy, and the
  API reference has ``StateMachine.process``.
* Each tutorial page is followed block by block (``tests/docs/page_run.py``, as the docs tests
  do), and at the point each screenshot illustrates, the dashboard it started is opened and shot
  into ``$PYSTATOR_SCREENSHOTS`` (``make screenshots``: docs/screenshots/).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pystator.manual import ensure_built, find_sources, serve
from tests.browser.test_dashboard_browser import by_css, shoot
from tests.docs.markdown_blocks import Block, read_blocks
from tests.docs.page_run import PageRun
from tests.support.ports import free_port
from tests.support.waiting import wait_until
from tests.support.worker_processes import ROOT

pytestmark = pytest.mark.browser

#: The documentation map's sections, in its order (then what the site adds).
MAP = [
    "Getting started",
    "Concepts",
    "Naming rules",
    "Package structure",
    "Declarative features",
    "Architecture",
    "Schedulers",
    "Configuration",
    "Discovery",
    "Worker",
    "State stores",
    "Tutorials",
    "Examples",
    "Reference",
    "API reference",
]


@pytest.fixture(scope="module")
def site_url() -> Iterator[str]:
    """The built site (built first when stale), served on a free loopback port."""
    sources = find_sources(ROOT)
    assert sources is not None
    site = ensure_built(sources)
    server = serve(site, port=free_port())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


def _map_links(browser: Any) -> list[tuple[str, str]]:
    from selenium.webdriver.common.by import By

    by_css(browser, "#documentation-map")
    table = browser.find_element(By.XPATH, "//h2[@id='documentation-map']/following::table[1]")
    links = table.find_elements(By.CSS_SELECTOR, "tbody td:first-child a")
    return [(a.text, a.get_attribute("href")) for a in links]


def test_the_site_follows_the_map_to_state_machine_process(browser: Any, site_url: str) -> None:
    browser.get(site_url + "/")
    links = _map_links(browser)
    assert [name for name, _ in links] == MAP
    for name, href in links:
        browser.get(href)
        heading = by_css(browser, "article h1").text
        assert heading, f"{name}: no title at {href}"
        assert "404" not in browser.title, f"{name}: {href} is missing"
    # the last section is the API reference: from there to StateMachine.process
    from selenium.webdriver.common.by import By

    by_css(browser, "article a[href*='machine']").click()
    target = by_css(browser, "[id='pystator.StateMachine.process']")
    assert "process" in target.text
    assert browser.find_element(By.CSS_SELECTOR, "article").text.count("TransitionResult") > 0


def test_diagrams_render_with_no_network(browser: Any, site_url: str) -> None:
    """Material draws Mermaid into a closed shadow root: the drawn box has a height."""
    browser.get(site_url + "/reference/diagrams/")
    by_css(browser, "div.mermaid")
    assert browser.execute_script("return typeof mermaid") == "object"  # the vendored copy
    height = "return document.querySelector('div.mermaid').getBoundingClientRect().height"
    wait_until(lambda: browser.execute_script(height) > 50, timeout=30, message="a drawn diagram")
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == [], errors


def _follow(page: str, tmp_path: Path, shots: dict[str, Any]) -> None:
    """Run the page's blocks; before the block containing each key, call its shooter."""
    blocks = read_blocks(ROOT / "docs" / "tutorials" / page)
    run = PageRun(tmp_path)
    pending = dict(shots)

    def before(block: Block) -> None:
        for marker in list(pending):
            if marker in block.code:
                pending.pop(marker)(run)

    try:
        run.run(blocks, before=before)
    finally:
        run.close()
    assert not pending, f"no block of {page} contains {sorted(pending)}"


def test_tutorial_order_workflow(browser: Any, tmp_path: Path, screenshot_dir: Path) -> None:
    def dashboard(run: PageRun) -> None:
        base = f"http://127.0.0.1:{run.port}/ui"
        browser.get(f"{base}/machines/order_workflow")
        by_css(browser, ".mermaid svg", timeout=30)
        shoot(browser, screenshot_dir, "tutorial-order-machine")
        browser.get(f"{base}/entities/order_workflow/order-3")
        by_css(browser, "main")
        assert "PARTIALLY_FILLED" in browser.page_source
        shoot(browser, screenshot_dir, "tutorial-order-entity")

    _follow("order-workflow.md", tmp_path, {"kill %1 %2": dashboard})


def test_tutorial_api_and_ui(browser: Any, tmp_path: Path, screenshot_dir: Path) -> None:
    def dashboard(run: PageRun) -> None:
        from selenium.webdriver.common.by import By

        base = f"http://127.0.0.1:{run.port}/ui"
        key = run.shell('echo "$KEY"').strip()
        browser.get(f"{base}/login")
        by_css(browser, "#token").send_keys(key)
        by_css(browser, "form[action='/ui/login'] button[type=submit]").click()
        by_css(browser, ".role-operator")
        browser.get(f"{base}?hours=1")
        by_css(browser, "[data-testid=by-machine]")
        shoot(browser, screenshot_dir, "tutorial-api-overview")
        browser.get(f"{base}/dead")
        row = by_css(browser, "main table tbody tr")
        assert "carrier API unreachable" in row.text
        shoot(browser, screenshot_dir, "tutorial-api-dead-letters")
        row.find_element(By.CSS_SELECTOR, "[data-testid=bulk-retry]").click()
        by_css(browser, "form[action*='/bulk']")
        shoot(browser, screenshot_dir, "tutorial-api-retry-preview")

    _follow("api-and-ui.md", tmp_path, {"rm carrier-down": dashboard})
