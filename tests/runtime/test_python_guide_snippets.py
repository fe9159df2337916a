"""Every snippet of the Python API guide, as written, on our own example files
(``examples/python_guide/order_fsm.yaml``: the guide's ``order_fsm.yaml``, ``order_management``
with ``pending`` -confirm-> ``confirmed``). The queue snippets run against SQLite with the
runtime's embedded worker and against PostgreSQL with a real ``pystator worker`` process.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pystator.fleet.runtime import set_default_runtime
from pystator.fsm_core.records import EventStatus
from tests.runtime.conftest import EXAMPLES, Backend

GUIDE = EXAMPLES / "python_guide"


@pytest.fixture
def in_guide_dir(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.chdir(GUIDE)
    yield GUIDE


def test_core_runtime_snippet(in_guide_dir: Path) -> None:
    from pystator import StateMachine

    machine = StateMachine.from_yaml("order_fsm.yaml")
    result = machine.process("pending", "confirm", {"approved": True})
    # ---
    assert result.success and result.error is None and result.target_state == "confirmed"


def test_stateful_entity_snippet(in_guide_dir: Path) -> None:
    from pystator import EntitySession, StateMachine

    machine = StateMachine.from_yaml("order_fsm.yaml")
    entity = EntitySession(machine, entity_id="order-123", context={"amount": 10})
    entity.send("confirm")
    # --- the context has no "approved": the guard refuses, the entity stays
    assert entity.current_state == "pending"
    assert entity.send("confirm", approved=True).target_state == "confirmed"


def test_orchestrator_snippet(in_guide_dir: Path) -> None:
    from pystator import InMemoryStateStore, Orchestrator, StateMachine

    machine = StateMachine.from_yaml("order_fsm.yaml")
    store = InMemoryStateStore()
    orchestrator = Orchestrator(machine, store)

    result = orchestrator.process_event("order-123", "confirm", {"approved": True})
    # ---
    assert result.target_state == "confirmed"
    assert store.get_state("order-123") == "confirmed"


def test_machine_definition_pipeline_snippet(in_guide_dir: Path) -> None:
    from pystator import build_machine, parse_machine_file

    definition = parse_machine_file("order_fsm.yaml")
    machine = build_machine(definition)
    # ---
    assert machine.name == "order_management"
    assert machine.process("pending", "confirm", {"approved": True}).target_state == "confirmed"


def test_runtime_and_worker_api_snippets(backend: Backend, in_guide_dir: Path) -> None:
    runtime = backend.runtime
    runtime.register_machine_from_file("order_fsm.yaml")
    runtime.create_entity("order_management", "order-123")
    set_default_runtime(runtime.fleet)  # submit_event_sync's default: this database
    try:
        from pystator.worker import submit_event_sync

        event_id = submit_event_sync(
            "order_management",
            "order-123",
            "confirm",
            context={"approved": True},
        )
        # ---
        assert runtime.queue is not None
        done = runtime.queue.wait_for_event(event_id, timeout=60)
        assert done.status is EventStatus.COMPLETED
    finally:
        set_default_runtime(None)
    entity = runtime.get_entity("order_management", "order-123")
    assert entity is not None and entity.state == "confirmed"
    assert [e.event_id for e in runtime.queue.list_events(entity_id="order-123")] == [event_id]
