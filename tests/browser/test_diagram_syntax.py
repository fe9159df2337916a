"""The Mermaid texts of ``pystator.visualization`` parse and render in the Mermaid the dashboard
vendors, in a real headless Chromium (titles with ``:``, quotes in guard expressions, the
``end`` keyword, composites, regions)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pystator import StateMachine
from pystator.visualization import to_mermaid, to_mermaid_flowchart
from tests.support.diagram_machines import MACHINES, machine_doc

VENDOR = (
    Path(__file__).resolve().parents[2] / "pystator" / "api" / "dashboard" / "static" / "vendor"
)

_RENDER = """
const [text, done] = arguments;
mermaid.initialize({startOnLoad: false, securityLevel: "strict"});
mermaid.parse(text)
  .then(() => mermaid.render("d" + Math.floor(Math.random() * 1e9), text))
  .then((out) => done("ok " + out.svg.length), (err) => done("error: " + err));
"""


@pytest.fixture
def mermaid_page(browser: Any, tmp_path: Path) -> Any:
    (script,) = VENDOR.glob("mermaid-*.min.js")
    page = tmp_path / "mermaid.html"
    page.write_text(f'<html><body><script src="{script.as_uri()}"></script></body></html>')
    browser.get(page.as_uri())
    browser.set_script_timeout(60)
    return browser


@pytest.mark.parametrize("kind", sorted(MACHINES))
def test_both_mermaid_forms_render(mermaid_page: Any, kind: str) -> None:
    machine = StateMachine.from_dict(machine_doc(kind))
    for text in (
        to_mermaid(machine, title=f"{kind}: all options", show_actions=True),
        to_mermaid_flowchart(machine, title=f'"{kind}" # flowchart', show_actions=True),
    ):
        outcome = mermaid_page.execute_async_script(_RENDER, text)
        assert outcome.startswith("ok "), f"{outcome}\n{text}"
