"""The machine page's shadow section in a real browser, against a real API and worker.

The loan machine is published, a candidate attached as its shadow at 100 % sampling, and loans
are applied by the worker until the shadow has recorded a difference. A viewer sees the match
rate and the groups but no buttons, and a forged promote is refused (403); an operator
promotes, and the candidate becomes the machine's next version. A screenshot of the section
goes to ``$PYSTATOR_SCREENSHOTS`` (``shadow.png``).
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import Stack
from tests.browser.test_dashboard_browser import fetch_status, login
from tests.replay.machines import LOAN, MACHINE, shadow_candidate
from tests.support.browser import all_css, by_css, shoot
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.browser, pytest.mark.slow]

WAIT = 120.0


@pytest.fixture(scope="module")
def shadowed(stack: Stack) -> Stack:
    """The loan machine with a shadow that has recorded differences."""
    with stack.client("admin") as admin:
        assert admin.post("/api/v1/machines", json={"config": LOAN}).status_code == 201
    with stack.client("operator") as operator:
        body = {"candidate": shadow_candidate(), "sample_rate": 1.0}
        assert operator.post(f"/api/v1/discovery/shadow/{MACHINE}", json=body).status_code == 201
    numbers = itertools.count()

    def differed() -> bool:
        # a new batch of loans each poll: the worker sees the machine and its shadow within
        # its refresh interval, and every loan after that is compared
        batch = []
        for score in (700, 610, 500):
            entity = f"b{next(numbers)}"
            batch += [
                {"machine": MACHINE, "entity_id": entity, "trigger": "submit"},
                {
                    "machine": MACHINE,
                    "entity_id": entity,
                    "trigger": "decide",
                    "context": {"score": score},
                },
            ]
        with stack.client("operator") as api:
            assert api.post("/api/v1/events/batch", json={"events": batch}).is_success
            view = api.get(f"/api/v1/discovery/shadow/{MACHINE}").json()
        kinds = {d["kind"] for d in view["diffs"]}
        return view["matched"] > 0 and {"target", "actions"} <= kinds

    wait_until(differed, timeout=WAIT, interval=1.0, message="shadow differences recorded")
    return stack


def test_a_viewer_sees_the_shadow_but_cannot_promote(browser: Any, shadowed: Stack) -> None:
    stack = shadowed
    login(browser, stack, "viewer")
    browser.get(f"{stack.base}/ui/machines/{MACHINE}")
    section = by_css(browser, "[data-testid=shadow]")
    assert "Match rate" in by_css(browser, "[data-testid=shadow-rate]").text
    groups = by_css(browser, "[data-testid=shadow-diffs]").text
    assert "APPROVED" in groups and "REJECTED" in groups and "target" in groups
    assert "active" in section.text
    assert all_css(browser, "[data-testid=shadow-promote]") == []
    assert all_css(browser, "[data-testid=shadow-stop]") == []
    token = by_css(browser, "input[name=csrf_token]").get_attribute("value")
    path = f"/ui/machines/{MACHINE}/shadow/promote"
    assert fetch_status(browser, path, {"csrf_token": token}) == 403
    assert stack.scalar("SELECT current_version FROM machine_registry WHERE name = 'loan'") == 1


def test_an_operator_promotes_the_shadow(
    browser: Any, shadowed: Stack, screenshot_dir: Path
) -> None:
    stack = shadowed
    login(browser, stack, "operator")
    browser.get(f"{stack.base}/ui/machines/{MACHINE}")
    by_css(browser, "[data-testid=shadow-timeline]")
    browser.execute_script(
        "const s = document.querySelector('[data-testid=shadow]');"
        "window.scrollTo(0, s.getBoundingClientRect().top + window.scrollY - 64)"
    )
    shoot(browser, screenshot_dir, "shadow")
    token = by_css(browser, "input[name=csrf_token]").get_attribute("value")
    path = f"/ui/machines/{MACHINE}/shadow/promote"
    assert fetch_status(browser, path, {"csrf_token": "forged"}) == 403
    browser.execute_script("window.confirm = () => true")
    button = by_css(browser, "[data-testid=shadow-promote]")
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", button)
    button.click()
    assert "Promoted" in by_css(browser, "[data-testid=flash]").text
    assert token
    assert stack.scalar("SELECT current_version FROM machine_registry WHERE name = 'loan'") == 2
    wait_until(
        lambda: (
            stack.scalar("SELECT count(*) FROM audit_log WHERE route LIKE '%shadow/promote'") == 1
        ),
        timeout=30,
        message="the promote audited",
    )
