"""``--app module:factory`` loading and machine lookup errors (no services needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pystator.fsm_core.errors import ConfigurationError, InvalidEventError
from pystator.registry.machines import MachineRegistry, load_app, machine_files

APP_MODULE = """
class Both:
    guards = "G"
    actions = "A"

def as_tuple():
    return ("G", "A")

def as_mapping():
    return {"guards": "G"}

def as_object():
    return Both()

def wrong():
    return 42
"""


@pytest.fixture
def app_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    (tmp_path / "demo_fsm_app.py").write_text(APP_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    return "demo_fsm_app"


@pytest.mark.parametrize(
    ("factory", "expected"),
    [("as_tuple", ("G", "A")), ("as_mapping", ("G", None)), ("as_object", ("G", "A"))],
)
def test_factory_shapes(app_module: str, factory: str, expected: tuple[object, object]) -> None:
    assert load_app(f"{app_module}:{factory}") == expected


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("no_colon", "expected 'module:factory'"),
        ("not_a_module_xyz:f", "cannot import 'not_a_module_xyz'"),
        ("{mod}:missing", "has no attribute 'missing'"),
        ("{mod}:wrong", "got int"),
    ],
)
def test_bad_app_specs_name_the_problem(app_module: str, spec: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        load_app(spec.format(mod=app_module))


def test_unknown_machine_lists_the_known_ones() -> None:
    with pytest.raises(InvalidEventError, match=r"unknown machine 'x' \(known: none loaded\)"):
        MachineRegistry().get("x")


def test_machine_files_of_a_directory(tmp_path: Path) -> None:
    for name in ("b.yaml", "a.yml", "c.json", "notes.txt"):
        (tmp_path / name).write_text("{}")
    assert [p.name for p in machine_files(tmp_path)] == ["a.yml", "b.yaml", "c.json"]
    with pytest.raises(ConfigurationError, match="neither a file nor a directory"):
        machine_files(tmp_path / "missing")
