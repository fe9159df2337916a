"""The machine-definition pipeline: the guide's snippet as written, the stores and the builder.

One model: a ``MachineDefinition`` is the engine's parsed definition; the SQLAlchemy store is
the database machine registry the fleet reads (SQLite and PostgreSQL).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pystator import StateMachine
from pystator.config.identity import local_principal
from pystator.errors import MachineValidationError
from pystator.machine_builder import MachineNotFoundError, build_machine, build_machine_from_store
from pystator.machine_parser import MachineDefinition, parse_machine, parse_machine_file
from pystator.machine_store import InMemoryMachineStore, MachineStoreClient, SQLAlchemyMachineStore
from pystator.registry import versions
from tests.support.worker_processes import ROOT

EXAMPLES = ROOT / "examples"


def test_the_guide_snippet_runs_as_written(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(EXAMPLES)
    # --- the guide, as written
    from pystator import build_machine, parse_machine_file

    definition = parse_machine_file("order_fsm.yaml")
    machine = build_machine(definition)
    # ---
    assert isinstance(definition, MachineDefinition)
    assert (definition.name, definition.version) == ("order_management", "1.0.0")
    assert machine.process("PENDING", "exchange_ack", {}).target_state == "OPEN"


def test_parse_machine_takes_a_mapping_or_text_and_names_every_problem() -> None:
    text = (EXAMPLES / "order_fsm.yaml").read_text()
    assert parse_machine(text).name == "order_management"
    parsed = parse_machine_file(EXAMPLES / "order_fsm.yaml")
    assert parse_machine(dict(parsed.document)) == parsed
    with pytest.raises(MachineValidationError, match=r"transitions\[0\]"):
        parse_machine(
            {
                "meta": {"machine_name": "bad"},
                "states": [{"name": "a", "type": "initial"}],
                "transitions": [{"trigger": "t", "source": "a", "dest": "nowhere"}],
            }
        )


def test_build_machine_binds_registries_by_reference() -> None:
    from pystator import ActionRegistry, GuardRegistry

    guards, actions = GuardRegistry(), ActionRegistry()
    machine = build_machine(
        parse_machine_file(EXAMPLES / "order_workflow.yaml"), guards=guards, actions=actions
    )
    guards.register("payment_ok", lambda ctx: bool(ctx.get("paid")))  # registered afterwards
    assert not machine.process("pending", "confirm", {"paid": False}).success
    assert machine.process("pending", "confirm", {"paid": True}).target_state == "confirmed"


def test_the_in_memory_store_versions_definitions() -> None:
    store = InMemoryMachineStore()
    assert isinstance(store, MachineStoreClient)
    definition = parse_machine_file(EXAMPLES / "order_fsm.yaml")
    assert store.save(definition) == 1
    assert store.save(definition) == 1  # identical: nothing stored
    changed = dict(definition.document)
    changed["states"] = [*changed["states"], {"name": "CANCELLED", "type": "terminal"}]
    assert store.save(parse_machine(changed)) == 2
    assert store.list_machines() == ["order_management"]
    assert store.list_versions("order_management") == [1, 2]
    assert "CANCELLED" not in build_machine_from_store(store, "order_management", 1).state_names
    current = build_machine_from_store(store, "order_management")
    assert "CANCELLED" in current.state_names and current.registry_version == 2
    with pytest.raises(MachineNotFoundError):
        store.get("nobody")
    with pytest.raises(MachineNotFoundError):
        store.get("order_management", 3)


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest) -> str:
    fixture = "sqlite_migrated_url" if request.param == "sqlite" else "pg_migrated_url"
    return str(request.getfixturevalue(fixture))


def test_the_sqlalchemy_store_is_the_machine_registry(database_url: str, tmp_path: Path) -> None:
    store = SQLAlchemyMachineStore(database_url)
    try:
        definition = parse_machine_file(EXAMPLES / "order_fsm.yaml")
        assert store.save(definition) == 1
        assert store.save(definition) == 1
        assert store.list_machines() == ["order_management"]
        # the registry's own view: what the fleet and the HTTP API read
        detail = versions.show_machine(store.engine, "order_management")
        assert detail.version.version == 1
        assert detail.version.created_by == store.created_by == local_principal("machine_store")
        machine = build_machine_from_store(store, "order_management")
        assert isinstance(machine, StateMachine) and machine.registry_version == 1
        assert store.get("order_management") == definition
        assert store.list_versions("nobody") == []
        with pytest.raises(MachineNotFoundError):
            build_machine_from_store(store, "nobody")
    finally:
        store.close()
