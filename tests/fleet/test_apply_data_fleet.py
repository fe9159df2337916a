"""Apply-data through the fleet: a ``worker_events`` row of kind ``apply_data``, applied by the
same claim, step and commit as named events (PostgreSQL and SQLite)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from pystator import StateMachine
from pystator.fleet.nudge import NullNudger
from pystator.fleet.processor import Processor
from pystator.fleet.producer import EventSpec, Producer
from pystator.fsm_core.apply_data import APPLY_DATA_TRIGGER
from pystator.fsm_core.errors import InvalidEventError
from pystator.fsm_core.records import EventKind
from pystator.registry.machines import MachineRegistry
from pystator.stores.sql import admin_queries, entity_queries, history_queries
from pystator.stores.sql.connections import dispose, fleet_engine
from tests.support.worker import FakeClock

pytestmark = pytest.mark.integration

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "order_routing.yaml"
MACHINE = "order_routing"


class Fleet:
    """A producer and a processor over one database, with the example order machine."""

    def __init__(self, url: str) -> None:
        self.engine = fleet_engine(url)
        clock = FakeClock()
        machines = MachineRegistry([StateMachine.from_yaml(EXAMPLE)])
        self.producer = Producer(
            engine=self.engine, machines=machines, nudger=NullNudger(), clock=clock
        )
        self.processor = Processor(self.engine, machines, clock=clock)

    def event(self, entity_id: str, trigger: str, **context: Any) -> int:
        spec = EventSpec(machine=MACHINE, entity_id=entity_id, trigger=trigger, context=context)
        return self.producer.submit(spec).event_id

    def data(self, entity_id: str, key: str | None = None, **data: Any) -> int:
        spec = EventSpec(
            machine=MACHINE,
            entity_id=entity_id,
            context=data,
            kind=EventKind.APPLY_DATA,
            idempotency_key=key,
        )
        return self.producer.submit(spec).event_id

    def rows(self) -> dict[int, Any]:
        with self.engine.connect() as conn:
            rows = admin_queries.list_events(conn, admin_queries.EventFilter(), limit=10_000)
        return {r.id: r for r in rows}

    def record(self, entity_id: str) -> Any:
        with self.engine.connect() as conn:
            return entity_queries.load_record(conn, MACHINE, entity_id)

    def history(self, entity_id: str) -> list[Any]:
        with self.engine.connect() as conn:
            return history_queries.load_history(conn, MACHINE, entity_id)


@pytest.fixture(params=["postgresql", "sqlite"])
def fleet(request: pytest.FixtureRequest) -> Iterator[Fleet]:
    name = "pg_migrated_url" if request.param == "postgresql" else "sqlite_migrated_url"
    fleet = Fleet(str(request.getfixturevalue(name)))
    yield fleet
    dispose(fleet.engine)


def test_apply_data_interleaves_with_named_events_in_submission_order(fleet: Fleet) -> None:
    ids = [
        fleet.event("o-1", "fill_partial", filled_qty=1),  # creates the entity
        fleet.data("o-1", filled_qty=100),  # filled matches; its guard refuses
        fleet.data("o-1", hold=True),  # filled still matches first (before on_hold): blocked
        fleet.event("o-1", "cancel"),
        fleet.data("o-1", settled=True),  # cancelled is terminal: merged, no move
    ]
    assert fleet.processor.drain() == 5

    rows = fleet.rows()
    assert [rows[i].kind for i in ids] == [
        "event",
        "apply_data",
        "apply_data",
        "event",
        "apply_data",
    ]
    assert {rows[i].status for i in ids} == {"completed"}
    routes = [rows[i].outcome["apply_data"]["route"] for i in (ids[1], ids[2], ids[4])]
    assert routes == ["blocked", "blocked", "no_transition"]
    record = fleet.record("o-1")
    assert (record.state, record.version) == ("cancelled", 5)
    assert record.context == {"filled_qty": 100, "hold": True, "settled": True}
    history = fleet.history("o-1")
    assert [h.trigger for h in history] == [
        "fill_partial",
        APPLY_DATA_TRIGGER,
        APPLY_DATA_TRIGGER,
        "cancel",
        APPLY_DATA_TRIGGER,
    ]
    assert [h.event_id for h in history] == ids
    assert history[1].payload == {"filled_qty": 100}


def test_a_routed_move_runs_the_transition_and_records_its_trigger(fleet: Fleet) -> None:
    fleet.event("o-2", "fill_partial", filled_qty=10)
    moved = fleet.data("o-2", filled_qty=100, settled=True)
    fleet.processor.drain()
    row = fleet.rows()[moved]
    assert row.status == "completed"
    assert row.outcome["target_state"] == "filled"
    assert row.outcome["apply_data"] == {
        "route": "moved",
        "moved": True,
        "source_state": "partially_filled",
        "target_state": "filled",
        "destination": "filled",
        "trigger": "fill",
        "tried": [],
    }
    assert [h.trigger for h in fleet.history("o-2")] == ["fill_partial", "fill"]


def test_apply_data_never_creates_an_entity(fleet: Fleet) -> None:
    ghost = fleet.data("ghost", filled_qty=5)
    fleet.processor.drain()
    row = fleet.rows()[ghost]
    assert (row.status, row.outcome) == ("rejected", {"reason": "entity_not_found"})
    assert fleet.record("ghost") is None


def test_idempotency_keys_hold_for_apply_data(fleet: Fleet) -> None:
    fleet.event("o-3", "fill_partial", filled_qty=1)
    first = fleet.data("o-3", key="k1", filled_qty=20)
    again = fleet.data("o-3", key="k1", filled_qty=20)
    assert again == first
    fleet.processor.drain()
    assert fleet.record("o-3").version == 2
    assert fleet.rows()[first].duplicate_count == 1


def test_the_door_refuses_bad_data_and_unknown_kinds(fleet: Fleet) -> None:
    with pytest.raises(InvalidEventError, match="context: must be a mapping"):
        fleet.producer.submit(
            EventSpec(machine=MACHINE, entity_id="o", context=[1], kind="apply_data")  # type: ignore[arg-type]
        )
    with pytest.raises(InvalidEventError, match="kind: must be one of: event, apply_data"):
        fleet.producer.submit(
            EventSpec(machine=MACHINE, entity_id="o", trigger="cancel", kind="teleport")
        )
    with fleet.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM worker_events")).scalar_one() == 0
