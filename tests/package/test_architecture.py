"""The package's shape: every module imports on its own, arrows point one way, the engine is pure.

DESIGN.md's layers, bottom to top: ``fsm_core`` (pure engine, with the one clock) ← ``config``
(settings, structured logging, ports) ← ``stores`` (all SQL in ``stores/sql``), ``schedulers``,
``registry``, ``plugins`` ← ``orchestrator``, ``fleet`` (what runs in a worker process) ←
``services`` (operator operations) ← ``api`` / ``commands`` / ``cli``. A module may import its
own area and the areas below it, never one above; no function body imports a pystator module
(that is how a cycle hides); the API and the CLI never import ``stores/sql``; the fleet never
imports the services. The documented import paths that only re-export (the shims) are held to
their table in ``test_shims.py``.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.support.package_tree import (
    PACKAGE,
    area,
    dotted,
    modules,
    pystator_imports,
    target_area,
)

#: Area of a module (its first path part under pystator/) -> areas it may import.
#: ``_shims`` (the shim table and the lazy loader) and ``_version`` import nothing of pystator.
_HELPERS = {"_shims", "_version"}
_BASE = {"fsm_core", "config", *_HELPERS}
_STORES = {*_BASE, "stores"}
_PUBLIC = {*_STORES, "schedulers", "orchestrator"}
#: The built-ins: the engine's guards and actions plus the http action (which does I/O).
_BUILTINS = {"fsm_core", "plugins"}
ALLOWED: dict[str, set[str]] = {
    "_shims": set(),
    "_version": set(),
    "fsm_core": {"fsm_core"},
    # settings, structured logging, default ports, machine config loading
    "config": {"fsm_core", "config"},
    "stores": _STORES,
    "migrations": {*_STORES, "migrations"},
    "schedulers": {*_STORES, "schedulers"},
    "orchestrator": _PUBLIC,
    "plugins": _BUILTINS,
    "http_action": {"plugins", *_HELPERS},
    "builtins": {"plugins", *_HELPERS},
    # the documented modules of the declarative features, re-exporting the engine's
    "checks": {"fsm_core", *_HELPERS},
    "effects": {"fsm_core", *_HELPERS},
    "lint": {"fsm_core", *_HELPERS},
    "sinks": {"fsm_core", *_HELPERS},
    "context": {"fsm_core", *_HELPERS},
    # diagrams of a definition (the dashboard and ``pystator viz`` draw with them)
    "visualization": {"fsm_core"},
    # documented module paths re-exporting the engine's (pystator.errors, .machine, .instance)
    "errors": {"fsm_core", *_HELPERS},
    "machine": {"fsm_core", *_HELPERS},
    "instance": {"fsm_core", *_HELPERS},
    # the documented facades (pystator.core, .behavior, .observability)
    "core": {"fsm_core", *_HELPERS},
    "behavior": {"fsm_core", *_HELPERS},
    "observability": {"fsm_core", "visualization", *_HELPERS},
    # the public re-export modules of the seed README (pystator, pystator.actions, …)
    "__init__": _PUBLIC | _BUILTINS | {"registry", "runtime"},
    "actions": _PUBLIC,
    "guards": _PUBLIC,
    "hooks": _PUBLIC,
    "scheduler": _PUBLIC,
    # observations, classification, inference, candidates and drafts (above the stores: its
    # SQLite store migrates the embedded database like the documented SQL stores do)
    "discovery": {*_STORES, "migrations", "discovery"},
    "registry": {*_STORES, "plugins", "registry"},
    # what runs in a worker process; never the operator services (they sit above it)
    "fleet": {*_PUBLIC, "registry", "fleet"},
    "services": {*_PUBLIC, "registry", "fleet", "discovery", "services"},
    # the documented ``pystator.worker`` import paths, re-exporting the fleet's
    "worker": {"fleet", *_HELPERS},
    # the documentation site: find, build and serve it (pystator docs, the API's /manual)
    "manual": {"fsm_core", "manual"},
    "api": {*_PUBLIC, "registry", "fleet", "services", "visualization", "manual", "api"},
    "commands": {
        *_PUBLIC,
        *_BUILTINS,
        "registry",
        "fleet",
        "services",
        "api",
        "visualization",
        "manual",
        "commands",
    },
    "cli": {*_PUBLIC, "fleet", "services", "api", "commands", "cli"},
    # the definition pipeline's documented modules, re-exporting the registry's
    "machine_parser": {"registry", *_HELPERS},
    "machine_builder": {"registry", *_HELPERS},
    "machine_store": {"registry", *_HELPERS},
    # PyStatorRuntime: the documented facade over the registry, the stores and the fleet
    # (beside the services, whose read models it shares)
    "runtime": {*_PUBLIC, "registry", "fleet", "services", "runtime"},
}


def test_no_function_body_imports_a_pystator_module() -> None:
    offenders = [
        f"{path.relative_to(PACKAGE.parent)}:{node.lineno}: {ast.unparse(node)}"
        for path in modules()
        for node, _module, in_function in pystator_imports(ast.parse(path.read_text()))
        if in_function
    ]
    assert offenders == [], "imports inside function bodies:\n" + "\n".join(offenders)


def test_imports_point_down_the_layers_only() -> None:
    offenders = []
    for path in modules():
        here = area(path)
        allowed = ALLOWED[here]
        for node, module, _ in pystator_imports(ast.parse(path.read_text())):
            target = target_area(module)
            if target != here and target not in allowed:
                rel = path.relative_to(PACKAGE.parent)
                offenders.append(f"{rel}:{node.lineno} ({here} -> {target}): {ast.unparse(node)}")
    assert offenders == [], "imports up the layers:\n" + "\n".join(offenders)


#: Areas that reach the database only through the operator services and the composition root.
NO_SQL_AREAS = ("api", "commands", "cli")


def test_api_and_commands_never_import_the_sql_layer() -> None:
    """The HTTP API and the CLI call services (which own their filter and row types) and the
    composition root (engines, migrations); ``pystator.stores.sql`` is not theirs to import."""
    offenders = [
        f"{path.relative_to(PACKAGE.parent)}:{node.lineno}: {ast.unparse(node)}"
        for path in modules()
        if area(path) in NO_SQL_AREAS
        for node, module, _ in pystator_imports(ast.parse(path.read_text()))
        if module == "pystator.stores.sql" or module.startswith("pystator.stores.sql.")
    ]
    assert offenders == [], "SQL layer imported from the API or the CLI:\n" + "\n".join(offenders)


def test_the_fleet_never_imports_the_operator_services() -> None:
    """Services (admin, lookups, audit, api keys, health, gauges, schema) may use the fleet; a
    worker process's code never needs them, so the arrow points one way only."""
    assert "services" not in ALLOWED["fleet"]
    offenders = [
        f"{path.relative_to(PACKAGE.parent)}:{node.lineno}: {ast.unparse(node)}"
        for path in modules()
        if area(path) == "fleet"
        for node, module, _ in pystator_imports(ast.parse(path.read_text()))
        if target_area(module) == "services"
    ]
    assert offenders == [], "fleet -> services:\n" + "\n".join(offenders)


def test_yaml_is_read_in_one_place() -> None:
    """Only the budgeted loader imports PyYAML: every reader of YAML goes through it."""
    home = PACKAGE / "fsm_core" / "yaml_loader.py"
    offenders = []
    for path in modules():
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            if path != home and any(n == "yaml" or n.startswith("yaml.") for n in names):
                offenders.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}")
    assert offenders == [], "YAML read outside fsm_core/yaml_loader.py:\n" + "\n".join(offenders)


def test_every_area_is_known() -> None:
    assert {area(p) for p in modules()} <= set(ALLOWED)


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
    names = [dotted(p) for p in modules()]
    shares = [names[i::_IMPORT_PROCESSES] for i in range(_IMPORT_PROCESSES)]
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _IMPORT_EACH_ALONE, *share],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for share in shares
        if share
    ]
    for proc in procs:
        output, _ = proc.communicate(timeout=600)
        assert proc.returncode == 0, output


#: The modules are shared out between this many interpreters run side by side (the machine's
#: two cores): each still imports every module of its share first, in a fresh fork.
_IMPORT_PROCESSES = 2


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
    assert not any(
        name.startswith(("pystator.worker", "pystator.fleet", "pystator.stores.sql"))
        for name in loaded
    )


@pytest.mark.parametrize("path", sorted((PACKAGE / "fsm_core").rglob("*.py")), ids=lambda p: p.name)
def test_fsm_core_imports_nothing_else_of_the_package(path: Path) -> None:
    tree = ast.parse(path.read_text())
    outside = [module for _node, module, _ in pystator_imports(tree)]
    assert all(m.startswith("pystator.fsm_core") for m in outside), outside
    # TYPE_CHECKING-only imports count too: the engine does not even name the rest.
    names = [
        node.module or ""
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("pystator")
    ]
    assert all(n.startswith("pystator.fsm_core") for n in names), names
