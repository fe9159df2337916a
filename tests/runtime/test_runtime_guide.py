"""The Python guide's ``PyStatorRuntime`` section, method by method, on SQLite and PostgreSQL.

The runtime runs in this process; queued events are applied by the runtime's embedded worker
(SQLite, in-process broker) or by a real ``pystator worker`` process (PostgreSQL, Redis
broker). The machines are our own example files (``examples/``).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from pystator import EntitySnapshot, PyStatorRuntime, TransitionResult
from pystator.errors import (
    ActionNotFoundError,
    EntityNotFoundError,
    GuardNotFoundError,
)
from pystator.fsm_core.errors import ConflictError, NotFoundError
from pystator.fsm_core.records import EventStatus
from pystator.registry.versions import load_document
from pystator.runtime import (
    MachineSession,
    QueueClient,
    TransitionEvent,
    TransitionsPage,
    apply_data,
    process_event,
    queue_apply_data,
)
from pystator.services import admin
from tests.runtime.conftest import EXAMPLES, Backend

ORDERS = "order_management"  # examples/order_fsm.yaml: PENDING -exchange_ack-> OPEN -fill-> FILLED
WORKFLOW = "order_workflow"  # examples/order_workflow.yaml: a guard and an action


def _workflow(rt: PyStatorRuntime) -> list[Any]:
    notified: list[Any] = []
    rt.register_guard("payment_ok", lambda ctx: bool(ctx.get("paid")))
    rt.register_action("notify_customer", lambda ctx: notified.append(dict(ctx)))
    rt.register_machine_from_file("order_workflow.yaml")
    return notified


def test_the_guide_constructor_snippet_runs_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYSTATOR_DATABASE_URL", f"sqlite:///{tmp_path / 'cfg.db'}")
    monkeypatch.delenv("PYSTATOR_BROKER_URL", raising=False)
    # --- the guide, as written
    from pystator import PyStatorRuntime

    # From PYSTATOR_DATABASE_URL / pystator.cfg
    runtime = PyStatorRuntime.from_config()
    # ---
    try:
        assert runtime.engine.url.database == str(tmp_path / "cfg.db")
        assert isinstance(runtime.queue, QueueClient)
    finally:
        runtime.close()
    with PyStatorRuntime.in_memory() as private:
        assert private.list_machines() == []


def test_registration_is_idempotent_on_name_and_version(backend: Backend) -> None:
    rt = backend.runtime
    first = rt.register_machine_from_file("order_fsm.yaml")
    again = rt.register_machine_from_dict(load_document(EXAMPLES / "order_fsm.yaml"))
    assert (first.name, first.version, first.created) == (ORDERS, "1.0.0", True)
    assert (again.registry_version, again.created) == (first.registry_version, False)
    changed = load_document(EXAMPLES / "order_fsm.yaml")
    changed["states"].append({"name": "CANCELLED", "type": "terminal"})
    with pytest.raises(ConflictError, match=r"bump meta\.version"):
        rt.register_machine_from_dict(changed)
    changed["meta"]["version"] = "1.1.0"
    bumped = rt.register_machine_from_dict(changed)
    assert (bumped.registry_version, bumped.created) == (first.registry_version + 1, True)
    assert [m.name for m in rt.list_machines()] == [ORDERS]
    assert "CANCELLED" in rt.validate_machine(ORDERS).state_names
    assert "CANCELLED" not in rt.validate_machine(ORDERS, version=1).state_names


def test_validate_machine_names_the_missing_guard_or_action(backend: Backend) -> None:
    rt = backend.runtime
    rt.register_machine_from_file("order_workflow.yaml")
    with pytest.raises(GuardNotFoundError, match="payment_ok"):
        rt.validate_machine(WORKFLOW)
    rt.register_guard("payment_ok", lambda ctx: True)
    with pytest.raises(ActionNotFoundError, match="notify_customer"):
        rt.validate_machine(WORKFLOW)
    rt.register_action("notify_customer", lambda ctx: None)
    assert rt.validate_machine(WORKFLOW).name == WORKFLOW
    assert rt.guards.get("payment_ok") is not None and "notify_customer" in rt.actions


def test_the_catalog_creates_updates_and_reports_compatibility(backend: Backend) -> None:
    rt = backend.runtime
    document = load_document(EXAMPLES / "order_fsm.yaml")
    created = rt.create_machine_from_dict(document)
    with pytest.raises(ConflictError):
        rt.create_machine_from_dict(document)
    with pytest.raises(NotFoundError):
        rt.update_machine_from_dict({**document, "meta": {"machine_name": "nobody"}})
    rt.create_entity(ORDERS, "o-1")
    rt.process_event(ORDERS, "o-1", "exchange_ack")
    smaller = {
        "meta": {"machine_name": ORDERS, "version": "2.0.0"},
        "states": [{"name": "PENDING", "type": "initial"}, {"name": "FILLED", "type": "terminal"}],
        "transitions": [{"trigger": "fill", "source": "PENDING", "dest": "FILLED"}],
    }
    report = rt.check_machine_compatibility(smaller)
    assert (report.compatible, report.stranded, report.entities) == (False, {"OPEN": 1}, 1)
    assert rt.check_machine_compatibility(document).compatible
    assert rt.check_machine_compatibility({"meta": {"machine_name": ORDERS}}).problems
    updated = rt.update_machine_from_dict(smaller)
    assert updated.registry_version == created.registry_version + 1
    record = rt.get_machine_record(ORDERS)
    assert record.version.version == updated.registry_version
    assert sorted(v.version for v in record.versions) == [1, 2]


def test_the_entity_lifecycle(backend: Backend) -> None:
    rt = backend.runtime
    notified = _workflow(rt)
    snapshot = rt.create_entity(WORKFLOW, "o-1", context={"paid": False})
    assert isinstance(snapshot, EntitySnapshot)
    assert (snapshot.state, snapshot.version, dict(snapshot.context)) == (
        "pending",
        1,
        {"paid": False},
    )
    with pytest.raises(ConflictError):
        rt.create_entity(WORKFLOW, "o-1")
    refused = rt.process_event(WORKFLOW, "o-1", "confirm")
    assert isinstance(refused, TransitionResult)
    assert not refused.success and refused.error is not None
    result = rt.process_event(WORKFLOW, "o-1", "confirm", context={"paid": True})
    assert (result.success, result.target_state) == (True, "confirmed")
    assert len(notified) == 1  # the on_enter action ran here, after the commit
    stored = rt.get_entity(WORKFLOW, "o-1")
    assert stored is not None and (stored.state, stored.version) == ("confirmed", 2)
    assert rt.get_entity(WORKFLOW, "nobody") is None
    with pytest.raises(EntityNotFoundError):
        rt.process_event(WORKFLOW, "nobody", "confirm")
    assert process_event(rt, WORKFLOW, "o-1", "ship").target_state == "shipped"
    with pytest.raises(NotImplementedError, match="apply-data"):
        rt.apply_data(WORKFLOW, "o-1", {"paid": True})
    with pytest.raises(NotImplementedError):
        apply_data(rt, WORKFLOW, "o-1", {})


def test_the_queue(backend: Backend) -> None:
    rt = backend.runtime
    rt.register_machine_from_file("order_fsm.yaml")
    rt.create_entity(ORDERS, "o-1")
    queue = rt.queue
    assert isinstance(queue, QueueClient)
    first = rt.queue_event(ORDERS, "o-1", "exchange_ack", idempotency_key="k-1")
    assert rt.queue_event(ORDERS, "o-1", "exchange_ack", idempotency_key="k-1") == first
    second = queue.submit_event(ORDERS, "o-1", "fill")
    done = queue.wait_for_event(second, timeout=60)
    assert done.status is EventStatus.COMPLETED and done.done
    status = rt.get_event_status(first)
    assert status is not None and status.status is EventStatus.COMPLETED
    assert queue.get_event_status(10**9) is None
    listed = queue.list_events(machine_name=ORDERS, entity_id="o-1")
    assert [e.event_id for e in listed] == [second, first]  # newest first
    assert queue.list_events(status="pending") == []
    assert queue.get_summary()["events"]["completed"] == 2
    snapshot = rt.get_entity(ORDERS, "o-1")
    assert snapshot is not None and (snapshot.state, snapshot.version) == ("FILLED", 3)
    with pytest.raises(NotImplementedError, match="apply-data"):
        rt.queue_apply_data(ORDERS, "o-1", {"x": 1})
    with pytest.raises(NotImplementedError):
        queue_apply_data(rt, ORDERS, "o-1", {"x": 1})


def test_the_observability_summary(backend: Backend) -> None:
    rt = backend.runtime
    rt.register_machine_from_file("order_fsm.yaml")
    for n in range(3):
        rt.create_entity(ORDERS, f"o-{n}")
    rt.process_event(ORDERS, "o-0", "exchange_ack")
    summary = rt.get_observability_summary(window_hours=1, machine_name=ORDERS, entity_id="o-0")
    assert (summary.entities, dict(summary.entities_by_machine)) == (3, {ORDERS: 3})
    assert dict(summary.entities_by_state) == {"OPEN": 1, "PENDING": 2}
    assert summary.transitions_in_window == 4  # three creations and one transition
    assert summary.entity is not None and summary.entity.state == "OPEN"


def test_list_transitions_and_subscribe_share_the_http_feed_cursor(backend: Backend) -> None:
    rt = backend.runtime
    rt.register_machine_from_file("order_fsm.yaml")
    rt.create_entity(ORDERS, "o-1")
    rt.process_event(ORDERS, "o-1", "exchange_ack")
    page = rt.list_transitions(limit=1)
    assert isinstance(page, TransitionsPage) and len(page.items) == 1
    rest = rt.list_transitions(after=page.next_cursor)
    http_rows = admin.transitions(rt.engine, limit=10)  # what GET /api/v1/transitions reads
    assert [t.id for t in (*page.items, *rest.items)] == [i for i, _ in http_rows]
    assert [t.to_state for t in rest.items] == ["OPEN"]
    assert rt.list_transitions(after=rest.next_cursor).items == ()

    stop = threading.Event()
    seen: list[TransitionEvent] = []
    feed = rt.subscribe(after=None, machine_name=ORDERS, poll_interval=0.05, stop=stop)

    def consume() -> None:
        for event in feed:
            seen.append(event)
            if len(seen) == 3:
                stop.set()

    reader = threading.Thread(target=consume)
    reader.start()
    rt.process_event(ORDERS, "o-1", "fill")  # a new one while subscribed
    reader.join(timeout=60)
    assert not reader.is_alive()
    assert [e.to_state for e in seen] == ["PENDING", "OPEN", "FILLED"]


def test_entity_operations_session_and_registries(backend: Backend) -> None:
    rt = backend.runtime
    notified = _workflow(rt)
    orders = rt.session(WORKFLOW)
    assert isinstance(orders, MachineSession)
    orders.create_entity("o-9", context={"paid": True})
    assert orders.process_event("o-9", "confirm").target_state == "confirmed"
    assert len(notified) == 1
    snapshot = orders.get_entity("o-9")
    assert snapshot is not None and snapshot.state == "confirmed"
    assert [t.to_state for t in orders.list_transitions().items] == ["pending", "confirmed"]
    with rt.entity_operations() as entities:
        assert entities.dry_run(WORKFLOW, "o-9", "ship").target_state == "shipped"
        assert entities.export(WORKFLOW, "o-9")["state"] == "confirmed"
        assert entities.view(WORKFLOW, "o-9").record.state == "confirmed"
        entities.purge(WORKFLOW, "o-9")
    assert orders.get_entity("o-9") is None
