"""The documented import paths that only re-export (the shims) are exactly their row of one table.

``pystator._shims.SHIMS`` lists every such module and the names it exports. Each shim must
define nothing of its own: a docstring, imports of its names from the modules that define them
(never from another shim), ``__all__`` equal to its row, and for the names of ``LAZY`` (optional
dependencies) a ``TYPE_CHECKING`` import plus ``__getattr__ = lazy_loader(__name__)``. No other
module sits at the top of the package than these shims, ``REAL_TOP_LEVEL`` and private helpers.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
from dataclasses import dataclass, field

import pytest

from pystator._shims import LAZY, REAL_TOP_LEVEL, SHIMS
from tests.support.package_tree import PACKAGE, dotted, path_of, submodule

#: Statements a shim may hold besides its imports: these exact texts.
_LAZY_HOOK = "__getattr__ = lazy_loader(__name__)"
_ALLOWED_IMPORTS = {
    ("__future__", "annotations"),
    ("typing", "TYPE_CHECKING"),
    ("pystator._shims", "lazy_loader"),
}


@dataclass
class ShimBody:
    """What a shim's source holds, statement by statement."""

    exported: dict[str, str] = field(default_factory=dict)  # name -> module it is imported from
    typing_only: dict[str, str] = field(default_factory=dict)  # TYPE_CHECKING imports
    all_names: list[str] = field(default_factory=list)
    lazy_hook: bool = False
    problems: list[str] = field(default_factory=list)


def _imports(node: ast.ImportFrom) -> list[tuple[str, str]]:
    """``(source module, exported name)`` of one ``from … import …``."""
    module = node.module or ""
    pairs = []
    for alias in node.names:
        source = submodule(alias.name) if module == "pystator" else module
        pairs.append((source, alias.asname or alias.name))
    return pairs


def _read(module: str) -> ShimBody:
    body = ShimBody()
    tree = ast.parse(path_of(module).read_text())
    for i, node in enumerate(tree.body):
        if i == 0 and isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            continue  # the docstring
        if isinstance(node, ast.ImportFrom):
            for source, name in _imports(node):
                if (node.module, name) not in _ALLOWED_IMPORTS:
                    body.exported[name] = source
        elif isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for inner in node.body:
                if isinstance(inner, ast.ImportFrom):
                    body.typing_only.update({n: s for s, n in _imports(inner)})
                else:
                    body.problems.append(ast.unparse(inner))
        elif ast.unparse(node) == _LAZY_HOOK:
            body.lazy_hook = True
        elif isinstance(node, ast.Assign) and ast.unparse(node.targets[0]) == "__all__":
            body.all_names = list(ast.literal_eval(node.value))
        else:
            body.problems.append(ast.unparse(node).splitlines()[0])
    return body


def test_only_shims_real_modules_and_private_helpers_sit_at_the_top_level() -> None:
    top = {dotted(p) for p in PACKAGE.glob("*.py")}
    private = {m for m in top if m.rpartition(".")[2].startswith("_") and m != "pystator"}
    assert top - private - set(SHIMS) - REAL_TOP_LEVEL == set()
    assert REAL_TOP_LEVEL.isdisjoint(SHIMS)


@pytest.mark.parametrize("module", sorted(SHIMS))
def test_a_shim_defines_nothing_and_exports_exactly_its_row(module: str) -> None:
    body = _read(module)
    row, lazy = set(SHIMS[module]), LAZY.get(module, {})
    assert body.problems == [], f"{module} defines more than its imports"
    assert sorted(body.all_names) == sorted(row), f"{module}.__all__ is not its row"
    assert len(body.all_names) == len(set(body.all_names))
    assert set(body.exported) | set(lazy) == row, f"{module} imports other names than its row"
    assert not set(body.exported) & set(lazy)
    assert body.lazy_hook == bool(lazy), f"{module}: __getattr__ iff it has lazy names"
    assert {n: body.typing_only.get(n) for n in lazy} == lazy, "lazy names typed where they live"


@pytest.mark.parametrize("module", sorted(SHIMS))
def test_a_shim_imports_from_where_names_live_never_from_another_shim(module: str) -> None:
    sources = set(_read(module).exported.values()) - {"pystator._version"}
    assert sources.isdisjoint(SHIMS), f"{module} re-exports another shim"


@pytest.mark.parametrize("module", sorted(SHIMS))
def test_every_name_of_a_row_resolves(module: str) -> None:
    shim = importlib.import_module(module)
    lazy = LAZY.get(module, {})
    for name in SHIMS[module]:
        if name in lazy:  # importing it may need a service or build an app: its module exists
            assert importlib.util.find_spec(lazy[name]) is not None
        else:
            assert hasattr(shim, name), f"{module}.{name}"
    with pytest.raises(AttributeError):
        _ = shim.no_such_name  # type: ignore[attr-defined]


def test_a_lazy_name_is_the_object_its_module_defines() -> None:
    import pystator
    from pystator.stores.sql.documented_stores import SQLiteStateStore

    assert pystator.SQLiteStateStore is SQLiteStateStore
