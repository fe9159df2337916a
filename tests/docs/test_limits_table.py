"""The "Definition limits" table in the docs is generated from ``fsm_core/limits.py``."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

from pystator.fsm_core import limits

ROOT = Path(__file__).resolve().parents[2]


def _hooks() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "docs_hooks", ROOT / "docs/_hooks/pystator_docs.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_limit_is_a_row_with_its_current_value() -> None:
    table = _hooks().limits_table()
    for name in limits.__all__:
        assert f"| `{name}` | {getattr(limits, name):,} |" in table


def test_the_reference_page_carries_the_marker_the_hook_fills() -> None:
    page = (ROOT / "docs/reference/fsm-config.md").read_text(encoding="utf-8")
    assert "<!-- definition-limits -->" in page
