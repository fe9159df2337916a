"""The package's modules as the architecture and shim tests read them: paths, dotted names, areas
and the pystator imports of a module's source (read as text, never imported)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "pystator"
#: Alembic's scripts: only Alembic runs them.
ALEMBIC_SCRIPTS = ("migrations/versions/", "migrations/env.py")


def modules() -> list[Path]:
    """Every module of the package (Alembic scripts excluded)."""
    return sorted(
        p for p in PACKAGE.rglob("*.py") if not any(s in p.as_posix() for s in ALEMBIC_SCRIPTS)
    )


def dotted(path: Path) -> str:
    """``pystator/fleet/app.py`` -> ``pystator.fleet.app`` (a package: its ``__init__``)."""
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def path_of(module: str) -> Path:
    """The source file of a dotted module name of the package."""
    base = PACKAGE.parent.joinpath(*module.split("."))
    return base / "__init__.py" if base.is_dir() else base.with_suffix(".py")


def area(path: Path) -> str:
    """A module's area: its first path part under ``pystator/`` (``__init__`` for the root)."""
    return path.relative_to(PACKAGE).with_suffix("").parts[0]


def target_area(module: str) -> str:
    """The area a dotted module name belongs to."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def submodule(name: str) -> str:
    """``pystator.<name>`` when that is a module of the package, else ``pystator``."""
    is_module = (PACKAGE / name).is_dir() or (PACKAGE / f"{name}.py").is_file()
    return f"pystator.{name}" if is_module else "pystator"


def is_type_checking_block(node: ast.AST) -> bool:
    """``if TYPE_CHECKING:`` (its imports never run)."""
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def pystator_imports(tree: ast.AST) -> list[tuple[ast.stmt, str, bool]]:
    """Every ``import pystator…`` / ``from pystator… import`` with whether it is inside a function
    body (outside ``if TYPE_CHECKING:`` blocks, which never run)."""
    found: list[tuple[ast.stmt, str, bool]] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if is_type_checking_block(child):
                continue
            nested = in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            if isinstance(child, ast.ImportFrom) and child.module == "pystator":
                for alias in child.names:  # ``from pystator import migrations`` names a module
                    found.append((child, submodule(alias.name), in_function))
            elif isinstance(child, ast.ImportFrom) and (child.module or "").startswith("pystator"):
                found.append((child, child.module or "", in_function))
            elif isinstance(child, ast.Import):
                for alias in child.names:
                    if alias.name.startswith("pystator"):
                        found.append((child, alias.name, in_function))
            visit(child, nested)

    visit(tree, False)
    return found
