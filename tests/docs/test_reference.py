"""Every public name has an API reference entry and a docstring."""

from __future__ import annotations

import importlib
import inspect
import re
from types import ModuleType

import pytest

from tests.support.worker_processes import ROOT

#: The modules whose ``__all__`` the API reference documents.
DOCUMENTED = (
    "pystator",
    "pystator.worker",
    "pystator.stores",
    "pystator.scheduler",
    "pystator.visualization",
    "pystator.config",
    "pystator.runtime",
    "pystator.machine_parser",
    "pystator.machine_store",
    "pystator.machine_builder",
)
_DIRECTIVE = re.compile(r"^::: ([\w.]+)", re.M)


def _entries() -> set[str]:
    return {
        match
        for page in (ROOT / "docs" / "api").glob("*.md")
        for match in _DIRECTIVE.findall(page.read_text())
    }


def _public(module: ModuleType) -> list[tuple[str, object]]:
    return [(name, getattr(module, name)) for name in module.__all__]


def _resolve(entry: str) -> object:
    module_name, _, name = entry.rpartition(".")
    try:
        return getattr(importlib.import_module(module_name), name)
    except ImportError:
        return importlib.import_module(entry)


@pytest.mark.parametrize("module_name", DOCUMENTED)
def test_every_public_name_has_a_reference_entry(module_name: str) -> None:
    """Under its own path, or as the same object documented under another public path."""
    module = importlib.import_module(module_name)
    entries = _entries()
    documented = [_resolve(entry) for entry in entries]
    missing = [
        name
        for name, obj in _public(module)
        if f"{module_name}.{name}" not in entries
        and name != "__version__"  # a string: named in the text of docs/api/machine.md
        and not any(obj is other for other in documented)
    ]
    assert missing == [], f"no `::: {module_name}.NAME` in docs/api/ for {missing}"


@pytest.mark.parametrize("module_name", DOCUMENTED)
def test_every_public_class_and_function_has_a_docstring(module_name: str) -> None:
    module = importlib.import_module(module_name)
    undocumented = [
        name
        for name, obj in _public(module)
        if (inspect.isclass(obj) or inspect.isroutine(obj) or inspect.ismodule(obj))
        and not (inspect.getdoc(obj) or "").strip()
    ]
    assert undocumented == [], f"{module_name}: no docstring on {undocumented}"


def test_every_reference_entry_names_something_that_exists() -> None:
    for entry in sorted(_entries()):
        assert _resolve(entry) is not None, entry
