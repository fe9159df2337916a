"""Declarative checks and effects give the same context on all four paths: ``process``,
``EntitySession``, the Orchestrator and real ``pystator worker`` processes on PostgreSQL.

The machine (``examples/declarative_order.yaml``) has no Python guards or actions, so
the workers load it from a directory with no app: everything they apply comes from the step.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from pystator import InMemoryStateStore, Orchestrator, StateMachine
from pystator.fleet.producer import EventSpec
from pystator.stores.sql import entity_queries, history_queries
from tests.support.declarative_machines import (
    DECL_ORDER_EVENTS,
    DECL_ORDER_FINAL,
    DECL_ORDER_PATH,
    decl_order,
)
from tests.support.fleet_database import status_counts
from tests.support.fleet_processes import WorkerFleet, producer_runtime
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

MACHINE = "decl_order"
ENTITIES = [f"order-{i}" for i in range(6)]
DRAIN_TIMEOUT_SECONDS = 120.0


def in_process() -> list[tuple[str, dict[str, Any]]]:
    """The final (state, context) from process, the session and the Orchestrator."""
    machine = StateMachine.from_dict(decl_order())
    state, context = machine.get_initial_state(), {}
    for trigger, payload in DECL_ORDER_EVENTS:
        result = machine.process(state, trigger, {**context, **payload})
        state = result.target_state or state
        context = dict(result.context or {**context, **payload})
    session = machine.create()
    for trigger, payload in DECL_ORDER_EVENTS:
        session.send(trigger, **payload)
    store = InMemoryStateStore()
    orchestrator = Orchestrator(machine=machine, state_store=store)
    for trigger, payload in DECL_ORDER_EVENTS:
        orchestrator.process_event("o", trigger, payload)
    record = store.load(MACHINE, "o")
    assert record is not None
    return [
        (state, context),
        (session.current_state, session.context),
        (record.state, dict(record.context)),
    ]


def test_four_paths_agree_on_effects_and_checks(
    pg_migrated_url: str, redis_url: str, tmp_path: Path
) -> None:
    machines = tmp_path / "machines"
    machines.mkdir()
    shutil.copy(DECL_ORDER_PATH, machines / DECL_ORDER_PATH.name)
    engine = sa.create_engine(pg_migrated_url)
    try:
        fleet_results, status, histories, counts = _run_fleet(
            pg_migrated_url, redis_url, machines, tmp_path, engine
        )
    finally:
        engine.dispose()

    expected = ("approved", DECL_ORDER_FINAL)
    assert in_process() == [expected] * 3
    assert [(r.state, dict(r.context)) for r in fleet_results if r is not None] == [expected] * len(
        ENTITIES
    )
    assert histories == [len(DECL_ORDER_EVENTS)] * len(ENTITIES)
    assert status.status == "rejected" and status.outcome["reason"] == "guard_rejected"
    assert counts == {"completed": 18, "rejected": 1}


def _run_fleet(
    database_url: str, broker_url: str, machines: Path, log_dir: Path, engine: sa.Engine
) -> tuple[Any, Any, Any, Any]:
    """Submit the events to two worker processes and read back what they stored."""
    with (
        producer_runtime(database_url, broker_url, machines) as runtime,
        WorkerFleet(
            database_url=database_url,
            broker_url=broker_url,
            log_dir=log_dir,
            concurrency=2,
            machines=machines,
            app=None,
        ) as fleet,
    ):
        fleet.start_all(2)
        for trigger, payload in DECL_ORDER_EVENTS:
            for entity in ENTITIES:
                runtime.producer.submit(
                    EventSpec(machine=MACHINE, entity_id=entity, trigger=trigger, context=payload)
                )
        rejected = runtime.producer.submit(
            EventSpec(machine=MACHINE, entity_id="empty", trigger="submit", context={"qty": 0})
        ).event_id
        try:
            wait_until(
                lambda: status_counts(engine).get("pending", 0) == 0,
                timeout=DRAIN_TIMEOUT_SECONDS,
                message="every event applied",
            )
        except TimeoutError as exc:
            raise AssertionError(f"{exc}: {status_counts(engine)}\n{fleet.log_tail()}") from exc
        fleet.stop_all()

    with engine.connect() as conn:
        fleet_results = [entity_queries.load_record(conn, MACHINE, e) for e in ENTITIES]
        status = conn.execute(
            sa.text("SELECT status, outcome FROM worker_events WHERE id = :id"), {"id": rejected}
        ).one()
        histories = [len(history_queries.load_history(conn, MACHINE, e)) for e in ENTITIES]
    return fleet_results, status, histories, status_counts(engine)
