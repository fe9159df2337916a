"""docs/discovery.md: its Python blocks run in order, and each one followed by "prints" prints
exactly the text block after it."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

from tests.conftest import ROOT

PAGE = ROOT / "docs" / "discovery.md"
_BLOCK = re.compile(r"```(python|text)\n(.*?)```", re.DOTALL)


def blocks() -> list[tuple[str, str]]:
    """``(language, code)`` of the page's fenced blocks, in order."""
    return [(m.group(1), m.group(2)) for m in _BLOCK.finditer(PAGE.read_text())]


def test_the_python_blocks_run_and_print_what_the_page_says(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # nothing the examples write lands in the repository
    namespace: dict[str, object] = {"__name__": "docs_discovery"}
    found = blocks()
    ran = 0
    for i, (language, code) in enumerate(found):
        if language != "python":
            continue
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(compile(code, f"{PAGE}:block{i}", "exec"), namespace)
        ran += 1
        text = PAGE.read_text()
        shown = _shown_output(text, code)
        if shown is not None:
            assert out.getvalue() == shown, f"block {i}"
    assert ran >= 4


def _shown_output(text: str, code: str) -> str | None:
    """The text block right after ``code`` when the page says it ``prints`` it."""
    marker = f"```python\n{code}```\n\nprints\n\n```text\n"
    start = text.find(marker)
    if start < 0:
        return None
    body = text[start + len(marker) :]
    return body[: body.index("```")]
