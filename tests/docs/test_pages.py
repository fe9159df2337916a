"""Every code block of the documentation site and of the README runs (see tests/docs/page_run.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.docs.markdown_blocks import read_blocks
from tests.docs.page_run import TALLY, PageRun
from tests.support.worker_processes import ROOT

PAGES = sorted(
    [ROOT / "README.md", *(p for p in (ROOT / "docs").rglob("*.md") if "_hooks" not in p.parts)]
)


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_page_code_runs(page: Path, tmp_path: Path) -> None:
    blocks = read_blocks(page)
    run = PageRun(tmp_path)
    try:
        run.run(blocks)
    finally:
        run.close()
    TALLY.pages += 1
