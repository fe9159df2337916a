"""The service behind a queued update (the HTTP route, the CLI and the runtime's
``queue_apply_data``), on PostgreSQL and SQLite."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from pystator import StateMachine
from pystator.fleet.nudge import NullNudger
from pystator.fleet.producer import Producer
from pystator.fsm_core.errors import EntityNotFoundError
from pystator.registry.machines import MachineRegistry
from pystator.services import entities
from pystator.services.apply_data import ApplyDataRequest, queue_apply_data

pytestmark = pytest.mark.integration

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "order_routing.yaml"


def test_queueing_needs_the_entity(engine: sa.Engine) -> None:
    machine = StateMachine.from_yaml(EXAMPLE)
    producer = Producer(engine=engine, machines=MachineRegistry([machine]), nudger=NullNudger())
    request = ApplyDataRequest(machine="order_routing", entity_id="o-2", data={"hold": True})
    with pytest.raises(EntityNotFoundError):
        queue_apply_data(engine, producer, request)
    entities.create(engine, machine, "o-2")
    receipt = queue_apply_data(engine, producer, request)
    assert not receipt.duplicate and int(receipt) > 0
