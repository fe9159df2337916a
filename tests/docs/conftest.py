"""The docs tests print what they did with every code block at the end of the run."""

from __future__ import annotations

import pytest

from tests.docs.page_run import TALLY


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not TALLY.pages:
        return
    kinds = ", ".join(f"{count} {kind}" for kind, count in sorted(TALLY.kinds.items()))
    terminalreporter.write_sep("-", "documentation code blocks")
    terminalreporter.write_line(
        f"{TALLY.pages} pages: {kinds}, {len(TALLY.not_run)} not run (marked on the page)"
    )
    for where, reason in TALLY.not_run:
        terminalreporter.write_line(f"  not run: {where}: {reason}")
