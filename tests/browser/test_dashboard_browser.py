"""The operations dashboard in a real headless Chromium, against ``pystator api`` and a real
worker on PostgreSQL and RabbitMQ.

An assessor outage kills 501 claims' ``assess`` events and a fraud-check timeout 20 ``approve``
events (one attempt each). Then, as operators and viewers would:

* an operator filters dead events by error, retries one, and sees it complete;
* an operator bulk-retries the other 500 by filter after a preview of the count, and the audit
  page shows it;
* a viewer sees no retry control, and a forged POST is refused (403);
* an idempotency lookup shows the duplicate count after three identical submissions;
* every page renders (a screenshot of each goes to ``$PYSTATOR_SCREENSHOTS``).

The tests run in this order and share the stack (each starts from what the previous left).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import Stack
from tests.support.browser import all_css, by_css, shoot
from tests.support.dashboard_app import ASSESSOR_DOWN, FRAUD_TIMEOUT
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.browser, pytest.mark.slow]

OUTAGE_DEAD = 501
FRAUD_DEAD = 20
HEALTHY = 120
WAITING = 10  # opened only: in triage, their 2 h timer armed
WAIT = 90.0


def _events(**fields: Any) -> dict[str, Any]:
    return {"machine": "claims", **fields}


def submit(stack: Stack, events: list[dict[str, Any]]) -> None:
    with stack.client() as api:
        for start in range(0, len(events), 1000):
            response = api.post(
                "/api/v1/events/batch", json={"events": events[start : start + 1000]}
            )
            assert response.status_code in (200, 201), response.text


@pytest.fixture(scope="module")
def seeded(stack: Stack) -> Stack:
    """The outage, its dead letters, and some healthy traffic around them."""
    stack.outage.write_text("down")
    outage = [f"c{n:04d}" for n in range(OUTAGE_DEAD)]
    fraud = [f"f{n:03d}" for n in range(FRAUD_DEAD)]
    healthy = [f"h{n:03d}" for n in range(HEALTHY)]
    waiting = [f"t{n:03d}" for n in range(WAITING)]
    opened = [_events(entity_id=e, trigger="open") for e in outage + fraud + healthy + waiting]
    submit(stack, opened)
    submit(
        stack,
        [
            _events(entity_id=e, trigger="assess", context={"needs_assessor": True}, max_attempts=1)
            for e in outage
        ]
        + [_events(entity_id=e, trigger="assess") for e in fraud + healthy],
    )
    submit(
        stack,
        [
            _events(entity_id=e, trigger="approve", context={"fraud_timeout": True}, max_attempts=1)
            for e in fraud
        ]
        + [
            _events(entity_id=e, trigger="approve", context={"amount": 50 * n, "limit": 4000})
            for n, e in enumerate(healthy)
        ],
    )
    submit(stack, [_events(entity_id=e, trigger="pay") for e in healthy[:60]])
    wait_until(
        lambda: (
            stack.scalar("SELECT count(*) FROM worker_events WHERE status = 'dead'")
            == OUTAGE_DEAD + FRAUD_DEAD
            and stack.scalar("SELECT count(*) FROM worker_events WHERE status = 'pending'") == 0
        ),
        timeout=WAIT,
        message="the outage's dead letters",
    )
    stack.outage.unlink()  # the assessor is back: retries succeed from now on
    return stack


# --- driving the browser ----------------------------------------------------------------------


def login(browser: Any, stack: Stack, role: str) -> None:
    browser.get(stack.base + "/ui/login")
    by_css(browser, "#token").send_keys(stack.keys[role])
    by_css(browser, "form[action='/ui/login'] button[type=submit]").click()
    by_css(browser, f".role-{role}")


def fetch_status(browser: Any, path: str, body: dict[str, str]) -> int:
    """POST ``body`` as a form from the page's own origin with the browser's cookies."""
    script = """
        const done = arguments[arguments.length - 1];
        const form = new URLSearchParams(arguments[1]);
        fetch(arguments[0], {method: 'POST', body: form, credentials: 'same-origin',
                             redirect: 'manual'})
            .then(r => done(r.status)).catch(e => done(String(e)));
    """
    return int(browser.execute_async_script(script, path, body))


# --- the scenarios ----------------------------------------------------------------------------


def test_an_operator_filters_dead_events_by_error_and_retries_one(
    browser: Any, seeded: Stack
) -> None:
    stack = seeded
    login(browser, stack, "operator")
    browser.get(stack.base + "/ui/events")
    by_css(browser, "#f-status option[value=dead]").click()
    by_css(browser, "[data-testid=filter-error]").send_keys("assessor service")
    by_css(browser, "[data-testid=apply-filters]").click()
    wait_until(lambda: "error=assessor" in browser.current_url, timeout=20, message="filtered")
    by_css(browser, "tr[data-event-id]")
    rows = all_css(browser, "table[data-testid=events] tbody tr[data-event-id]")
    assert len(rows) == 50  # one page; the other filters' events are not among them
    assert all("assessor service" in row.text for row in rows), [r.text for r in rows[:3]]
    assert not any(FRAUD_TIMEOUT in row.text for row in rows)

    rows[0].find_element("css selector", "td a").click()
    event_id = int(browser.current_url.rsplit("/", 1)[1])
    assert "dead" in by_css(browser, "h1 .badge").text
    by_css(browser, "[data-testid=retry]").click()
    assert "Sent back to pending" in by_css(browser, "[data-testid=flash]").text

    def completed() -> bool:
        browser.get(f"{stack.base}/ui/events/{event_id}")
        return "completed" in by_css(browser, "h1 .badge").text

    wait_until(completed, timeout=WAIT, interval=0.5, message="the retried event applied")
    assert ASSESSOR_DOWN in by_css(browser, "[data-testid=attempts-table]").text  # history kept


def test_an_operator_bulk_retries_500_dead_events_after_a_preview(
    browser: Any, seeded: Stack, screenshot_dir: Path
) -> None:
    stack = seeded
    login(browser, stack, "operator")
    browser.get(stack.base + "/ui/dead")
    groups = by_css(browser, "[data-testid=dead-groups]").text
    assert ASSESSOR_DOWN in groups and FRAUD_TIMEOUT in groups
    shoot(browser, screenshot_dir, "dead-letters")
    row = next(
        r for r in all_css(browser, "[data-testid=dead-groups] tbody tr") if ASSESSOR_DOWN in r.text
    )
    row.find_element("css selector", "[data-testid=bulk-retry]").click()

    assert by_css(browser, "[data-testid=matched]").text == "500"
    assert by_css(browser, "[data-testid=selected]").text == "500"
    assert stack.scalar("SELECT count(*) FROM worker_events WHERE status = 'dead'") == (
        OUTAGE_DEAD - 1 + FRAUD_DEAD
    )  # the preview changed nothing
    shoot(browser, screenshot_dir, "bulk-preview")
    by_css(browser, "[data-testid=confirm]").click()
    assert by_css(browser, "[data-testid=affected]").text == "500"

    wait_until(
        lambda: (
            stack.scalar(
                "SELECT count(*) FROM entity_states WHERE state = 'assessment' AND entity_id LIKE 'c%'"
            )
            == OUTAGE_DEAD
        ),
        timeout=WAIT,
        message="the 500 retried events applied",
    )
    assert stack.scalar("SELECT count(*) FROM worker_events WHERE status = 'dead'") == FRAUD_DEAD

    browser.get(stack.base + "/ui/audit")
    audit = by_css(browser, "table[data-testid=audit] tbody tr[data-route='/ui/bulk']")
    assert "500" in audit.find_element("css selector", "[data-testid=audit-affected]").text
    assert "operator" in audit.text and "assessor service unavailable" in audit.text
    shoot(browser, screenshot_dir, "audit")


def test_a_viewer_sees_no_retry_control_and_a_forged_post_is_refused(
    browser: Any, seeded: Stack
) -> None:
    stack = seeded
    login(browser, stack, "viewer")
    dead_id = stack.scalar("SELECT min(id) FROM worker_events WHERE status = 'dead'")
    browser.get(f"{stack.base}/ui/events/{dead_id}")
    assert "dead" in by_css(browser, "h1 .badge").text
    assert all_css(browser, "[data-testid=retry]") == []
    assert all_css(browser, "[data-testid=discard]") == []
    browser.get(stack.base + "/ui/dead")
    by_css(browser, "[data-testid=dead-groups]")
    assert all_css(browser, "[data-testid=bulk-retry]") == []

    # the page's own CSRF token (from the logout form), as a script on the page would find it
    token = by_css(browser, "input[name=csrf_token]").get_attribute("value")
    forged = {"csrf_token": token, "kind": "events", "operation": "retry", "status": "dead"}
    assert fetch_status(browser, "/ui/bulk", forged) == 403
    assert fetch_status(browser, f"/ui/events/{dead_id}/retry", {"csrf_token": token}) == 403
    assert fetch_status(browser, "/ui/bulk", {**forged, "csrf_token": "forged"}) == 403
    assert stack.scalar("SELECT count(*) FROM worker_events WHERE status = 'dead'") == FRAUD_DEAD


def test_an_idempotency_lookup_shows_the_duplicate_count(browser: Any, seeded: Stack) -> None:
    stack = seeded
    event = _events(entity_id="h000", trigger="decline", idempotency_key="claim-h000-decline-1")
    with stack.client() as api:
        statuses = [api.post("/api/v1/events", json=event).status_code for _ in range(3)]
    assert statuses == [201, 200, 200]
    login(browser, stack, "viewer")
    browser.get(stack.base + "/ui/idempotency")
    by_css(browser, "[data-testid=key-input]").send_keys("claim-h000-decline-1")
    by_css(browser, "[data-testid=lookup]").click()
    result = by_css(browser, "[data-testid=key-result]")
    assert by_css(browser, "[data-testid=submitted]").text == "3"
    assert by_css(browser, "[data-testid=duplicates]").text == "2"
    assert "claim-h000-decline-1" in by_css(browser, "[data-testid=duplicates-table]").text
    assert "h000" in result.text


def test_every_page_renders_in_the_browser(
    browser: Any, seeded: Stack, screenshot_dir: Path
) -> None:
    stack = seeded
    with stack.client() as api:  # a refused reuse of a key, for the idempotency page
        api.post(
            "/api/v1/events",
            json=_events(entity_id="h001", trigger="pay", idempotency_key="claim-h000-decline-1"),
        )
    browser.get(stack.base + "/ui/login")
    by_css(browser, "#token")
    shoot(browser, screenshot_dir, "login")
    login(browser, stack, "admin")
    errors: list[str] = []
    dead_id = stack.scalar("SELECT min(id) FROM worker_events WHERE status = 'dead'")
    pages = {
        "overview": ("/ui?hours=1", "[data-testid=by-machine]"),
        "events": ("/ui/events?machine=claims", "table[data-testid=events]"),
        "event": (f"/ui/events/{dead_id}", "[data-testid=attempts-table]"),
        "idempotency": ("/ui/idempotency?key=claim-h000-decline-1", "[data-testid=key-result]"),
        "entities": ("/ui/entities?q=h0&machine=claims", "table[data-testid=entities]"),
        "entity": ("/ui/entities/claims/c0001", "[data-testid=timeline]"),
        "machines": ("/ui/machines", "table[data-testid=machines]"),
        "machine": ("/ui/machines/claims", "[data-testid=state-counts]"),
        "actions": ("/ui/actions", "table[data-testid=actions]"),
    }
    for name, (path, marker) in pages.items():
        browser.get(stack.base + path)
        by_css(browser, marker)
        if name == "overview":
            by_css(browser, ".chart canvas")  # uPlot drew the rates
        if name == "machine":
            by_css(browser, "body[data-diagram=drawn] pre.mermaid svg", timeout=30)
            assert "triage" in by_css(browser, "pre.mermaid svg").text
        errors += [
            f"{name}: {entry['message']}"
            for entry in browser.get_log("browser")
            if entry.get("level") == "SEVERE"
        ]
        shoot(browser, screenshot_dir, name)
    assert errors == []  # no script error, no CSP violation, no missing file


_FIRE_TRANSITION = "htmx.trigger(document.body, 'transition');"


def test_the_overview_refreshes_and_the_refresh_can_be_paused(browser: Any, seeded: Stack) -> None:
    stack = seeded
    login(browser, stack, "viewer")
    browser.get(stack.base + "/ui")
    first = by_css(browser, "[data-testid=workers-alive]")
    assert int(first.text) >= 1
    # The live part re-renders on the "transition" trigger the transition stream fires (and on a
    # 30 s fallback poll); fire it as the stream does, so the test needs no new traffic.
    browser.execute_script(_FIRE_TRANSITION)
    wait_until(
        lambda: first.id != by_css(browser, "[data-testid=workers-alive]").id,
        timeout=20,
        interval=0.5,
        message="the live part swapped in",
    )
    by_css(browser, "[data-testid=pause]").click()
    paused = by_css(browser, "[data-testid=workers-alive]")
    # Count the live part's refresh ticks after the pause: each must be blocked (the positive
    # signal that a refresh would have happened by now), none sent, nothing swapped.
    browser.execute_script(
        "window.__swaps = 0; window.__blocked = 0; window.__sent = 0;"
        "document.body.addEventListener('htmx:afterSwap', () => window.__swaps++);"
        "document.addEventListener('htmx:beforeRequest', (e) => {"
        "  if (!e.detail.elt.hasAttribute('data-live')) return;"
        "  if (e.defaultPrevented) window.__blocked++; else window.__sent++;"
        "});"
    )
    wait_until(  # fire refreshes (the stream's trigger) until one is held back by the pause
        lambda: browser.execute_script(_FIRE_TRANSITION + "return window.__blocked") >= 1,
        timeout=20,
        interval=0.5,
        message="a refresh tick blocked by the pause",
    )
    assert browser.execute_script("return window.__sent") == 0
    assert browser.execute_script("return window.__swaps") == 0
    assert paused.id == by_css(browser, "[data-testid=workers-alive]").id
    assert json.loads(by_css(browser, "#chart-rates").get_attribute("textContent"))["t"]
