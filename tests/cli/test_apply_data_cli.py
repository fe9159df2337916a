"""``pystator apply-data MACHINE ENTITY DATA``: queue a data update (PostgreSQL and SQLite),
run as the real console script."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from pystator import StateMachine
from pystator.fleet.processor import Processor
from pystator.registry.machines import MachineRegistry
from pystator.services import admin, entities
from pystator.stores.sql.connections import dispose, fleet_engine
from tests.support.worker_processes import env_for, pystator_cmd

pytestmark = pytest.mark.integration

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "order_routing.yaml"
MACHINE = "order_routing"


@pytest.fixture(params=["postgresql", "sqlite"])
def engine(request: pytest.FixtureRequest) -> Iterator[sa.Engine]:
    """The database, with entity ``o-1`` of the example machine."""
    name = "pg_migrated_url" if request.param == "postgresql" else "sqlite_migrated_url"
    engine = fleet_engine(str(request.getfixturevalue(name)))
    entities.create(engine, StateMachine.from_yaml(EXAMPLE), "o-1")
    yield engine
    dispose(engine)


def apply_data(engine: sa.Engine, *args: str) -> subprocess.CompletedProcess[str]:
    env = env_for(
        {
            "PYSTATOR_DATABASE_URL": engine.url.render_as_string(hide_password=False),
            "PYSTATOR_BROKER_URL": "memory://",
            "PYSTATOR_MACHINES": str(EXAMPLE),
        },
        clean=True,
    )
    return subprocess.run(
        [*pystator_cmd(), "apply-data", MACHINE, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_apply_data_queues_an_update_that_a_worker_routes(engine: sa.Engine) -> None:
    queued = apply_data(engine, "o-1", '{"filled_qty": 30}', "--idempotency-key", "k")
    assert queued.returncode == 0, queued.stderr
    event_id = int(queued.stdout.strip())
    again = apply_data(engine, "o-1", '{"filled_qty": 30}', "--idempotency-key", "k")
    assert again.stdout.strip() == f"{event_id} (duplicate)"

    Processor(engine, MachineRegistry([StateMachine.from_yaml(EXAMPLE)])).drain()
    event = admin.show_event(engine, event_id).event
    assert (event.kind, event.status) == ("apply_data", "completed")
    assert event.outcome is not None
    assert event.outcome["apply_data"]["trigger"] == "fill_partial"
    assert entities.load(engine, MACHINE, "o-1").state == "partially_filled"


def test_bad_input_is_a_clear_error(engine: sa.Engine) -> None:
    for args, message in (
        (["ghost", "{}"], "no entity 'ghost' of machine 'order_routing'"),
        (["o-1", "[1]"], "DATA must be a JSON object"),
        (["o-1", "{oops"], "DATA is not valid JSON"),
    ):
        failed = apply_data(engine, *args)
        assert failed.returncode != 0
        assert message in failed.stderr and "Traceback" not in failed.stderr
