"""The package's shape: every module imports on its own, arrows point one way, the engine is pure.

DESIGN.md's layers, bottom to top: ``fsm_core`` (pure engine) ← the base modules (clock,
settings, logging) ← ``stores`` ← ``migrations`` / ``schedulers`` ← ``orchestrator`` ← ``worker``
← ``api`` / ``commands`` / ``cli``. A module may import its own area and the areas below it,
never one above; and no function body imports a pystator module (that is how a cycle hides).
"""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "pystator"

#: Area of a module (its first path part under pystator/) -> areas it may import.
_BASE = {"clock", "settings", "logging", "failures"}
_STORES = {"fsm_core", *_BASE, "stores"}
_PUBLIC = {*_STORES, "schedulers", "orchestrator"}
#: The built-ins: the engine's guards and actions plus the http action (which does I/O).
_BUILTINS = {"fsm_core", "http_action", "builtins"}
ALLOWED: dict[str, set[str]] = {
    "fsm_core": {"fsm_core"},
    "clock": {"fsm_core"},
    "settings": {"fsm_core"},
    "logging": {"fsm_core"},
    "failures": {"fsm_core"},
    "stores": _STORES,
    "migrations": {*_STORES, "migrations"},
    "schedulers": {*_STORES, "schedulers"},
    "orchestrator": _PUBLIC,
    "http_action": {"fsm_core"},
    "builtins": _BUILTINS,
    # the documented modules of the declarative features, re-exporting the engine's
    "checks": {"fsm_core"},
    "effects": {"fsm_core"},
    "lint": {"fsm_core"},
    "sinks": {"fsm_core"},
    "context": {"fsm_core"},
    # diagrams of a definition (the dashboard and ``pystator viz`` draw with them)
    "visualization": {"fsm_core"},
    # pystator.config: the documented configuration namespace (ports, validation)
    "config": {"fsm_core", *_BASE, "config"},
    # documented module paths re-exporting the engine's (pystator.errors, .machine, .instance)
    "errors": {"fsm_core"},
    "machine": {"fsm_core"},
    "instance": {"fsm_core"},
    # the documented facades (pystator.core, .behavior, .observability)
    "core": {"fsm_core"},
    "behavior": {"fsm_core"},
    "observability": {"fsm_core", "visualization"},
    # the public re-export modules of the seed README (pystator, pystator.actions, …)
    "__init__": _PUBLIC | _BUILTINS | {"config", "sql_stores"},
    # the documented SQL store names: connect() migrates, so they sit above the migrations
    "sql_stores": {*_STORES, "migrations", "sql_stores"},
    "actions": _PUBLIC,
    "guards": _PUBLIC,
    "hooks": _PUBLIC,
    "scheduler": _PUBLIC,
    # observations, classification, inference, candidates and drafts (above the stores: its
    # SQLite store migrates the embedded database like the documented SQL stores do)
    "discovery": {*_STORES, "migrations", "discovery"},
    "worker": {*_PUBLIC, "migrations", "worker"},
    "api": {*_PUBLIC, "migrations", "worker", "visualization", "api"},
    "commands": {*_PUBLIC, *_BUILTINS, "migrations", "worker", "api", "visualization", "commands"},
    "cli": {*_PUBLIC, "migrations", "worker", "api", "commands", "cli"},
}


def _modules() -> list[Path]:
    """Every module of the package (Alembic scripts, which only Alembic runs, excluded)."""
    scripts = ("migrations/versions/", "migrations/env.py")
    return sorted(p for p in PACKAGE.rglob("*.py") if not any(s in p.as_posix() for s in scripts))


def _dotted(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _area(path: Path) -> str:
    return path.relative_to(PACKAGE).with_suffix("").parts[0]


def _pystator_imports(tree: ast.AST) -> list[tuple[ast.stmt, str, bool]]:
    """Every ``import pystator…`` / ``from pystator… import`` with whether it is inside a function
    body (outside ``if TYPE_CHECKING:`` blocks, which never run)."""
    found: list[tuple[ast.stmt, str, bool]] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue
            nested = in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            if isinstance(child, ast.ImportFrom) and child.module == "pystator":
                for alias in child.names:  # ``from pystator import migrations`` names a module
                    found.append((child, _submodule(alias.name), in_function))
            elif isinstance(child, ast.ImportFrom) and (child.module or "").startswith("pystator"):
                found.append((child, child.module or "", in_function))
            elif isinstance(child, ast.Import):
                for alias in child.names:
                    if alias.name.startswith("pystator"):
                        found.append((child, alias.name, in_function))
            visit(child, nested)

    visit(tree, False)
    return found


def _submodule(name: str) -> str:
    """``pystator.<name>`` when that is a module of the package, else ``pystator``."""
    is_module = (PACKAGE / name).is_dir() or (PACKAGE / f"{name}.py").is_file()
    return f"pystator.{name}" if is_module else "pystator"


def _target_area(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def test_no_function_body_imports_a_pystator_module() -> None:
    offenders = [
        f"{path.relative_to(PACKAGE.parent)}:{node.lineno}: {ast.unparse(node)}"
        for path in _modules()
        for node, _module, in_function in _pystator_imports(ast.parse(path.read_text()))
        if in_function
    ]
    assert offenders == [], "imports inside function bodies:\n" + "\n".join(offenders)


def test_imports_point_down_the_layers_only() -> None:
    offenders = []
    for path in _modules():
        area = _area(path)
        allowed = ALLOWED[area]
        for node, module, _ in _pystator_imports(ast.parse(path.read_text())):
            target = _target_area(module)
            if target != area and target not in allowed:
                rel = path.relative_to(PACKAGE.parent)
                offenders.append(f"{rel}:{node.lineno} ({area} -> {target}): {ast.unparse(node)}")
    assert offenders == [], "imports up the layers:\n" + "\n".join(offenders)


def test_every_area_is_known() -> None:
    assert {_area(p) for p in _modules()} <= set(ALLOWED)


#: Runs in a fresh interpreter: imports the third-party libraries once, then forks one child per
#: pystator module and imports that module first thing in the child (no pystator module is loaded
#: in the parent), so each module is the first of the package to be imported, as in a new process.
_IMPORT_EACH_ALONE = textwrap.dedent(
    """
    import importlib, os, sys, traceback
    for lib in ("sqlalchemy", "sqlalchemy.orm", "alembic", "celery", "kombu", "redis", "psycopg",
                "structlog", "yaml", "fastapi", "pydantic", "uvicorn", "prometheus_client"):
        try:
            importlib.import_module(lib)
        except ImportError:
            pass
    assert not any(name.startswith("pystator") for name in sys.modules)
    failed = 0
    for module in sys.argv[1:]:
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read)
            try:
                importlib.import_module(module)
            except BaseException:
                os.write(write, f"{module}:\\n{traceback.format_exc()}".encode())
                os._exit(1)
            os._exit(0)
        os.close(write)
        with os.fdopen(read) as pipe:
            report = pipe.read()
        _, status = os.waitpid(pid, 0)
        if status:
            failed += 1
            print(report or f"{module}: exit status {status}")
    sys.exit(1 if failed else 0)
    """
)


def test_every_module_imports_alone_in_a_fresh_interpreter() -> None:
    """An import cycle shows up as 'partially initialized module' when a module is the first
    one of the package imported; each module is therefore imported first, in its own process."""
    modules = [_dotted(p) for p in _modules()]
    proc = subprocess.run(
        [sys.executable, "-c", _IMPORT_EACH_ALONE, *modules],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


_ONLY_PYYAML = textwrap.dedent(
    """
    import importlib.abc, sys

    BLOCKED = ("sqlalchemy", "alembic", "psycopg", "redis", "celery", "kombu", "structlog",
               "fastapi", "pydantic", "uvicorn", "prometheus_client", "aiosqlite")

    class Refuse(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ModuleNotFoundError(f"No module named {name!r} (blocked)", name=name)
            return None

    sys.meta_path.insert(0, Refuse())
    import pystator
    from pystator import StateMachine
    machine = StateMachine.from_dict({
        "meta": {"machine_name": "m"},
        "states": [{"name": "a", "type": "initial"}, {"name": "b", "type": "terminal"}],
        "transitions": [{"trigger": "go", "source": "a", "dest": "b"}],
    })
    assert machine.process("a", "go", {}).target_state == "b"
    loaded = sorted(n for n in sys.modules if n.startswith("pystator"))
    print("\\n".join(loaded))
    """
)


def test_the_engine_runs_with_only_pyyaml_installed() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", _ONLY_PYYAML], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    loaded = set(proc.stdout.split())
    assert not any(name.startswith(("pystator.worker", "pystator.stores.sql")) for name in loaded)


@pytest.mark.parametrize("path", sorted((PACKAGE / "fsm_core").rglob("*.py")), ids=lambda p: p.name)
def test_fsm_core_imports_nothing_else_of_the_package(path: Path) -> None:
    tree = ast.parse(path.read_text())
    outside = [module for _node, module, _ in _pystator_imports(tree)]
    assert all(m.startswith("pystator.fsm_core") for m in outside), outside
    # TYPE_CHECKING-only imports count too: the engine does not even name the rest.
    names = [
        node.module or ""
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("pystator")
    ]
    assert all(n.startswith("pystator.fsm_core") for n in names), names
