"""Shadow mode on real ``pystator worker`` processes (PostgreSQL, Redis broker): differences
are recorded while the fleet drains, and the shadow never runs an action, arms a timer or
changes an outcome."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from pystator import StateMachine
from pystator.fleet.producer import EventSpec
from pystator.registry import versions
from pystator.services import shadow
from pystator.stores.sql import entity_queries
from pystator.stores.sql.schema import action_outbox, worker_timers
from tests.replay.machines import LOAN, MACHINE, shadow_candidate
from tests.support.api_clients import TEST_ACTOR
from tests.support.fleet_database import status_counts
from tests.support.fleet_processes import WorkerFleet, producer_runtime
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

ENTITIES = 40
WAIT = 120.0


def score(n: int) -> int:
    """Scores from 500 to 695: a few in (600, 620], where the candidate decides otherwise."""
    return 500 + 5 * n


def test_shadow_diffs_are_recorded_while_a_fleet_drains(
    pg_migrated_url: str, redis_url: str, tmp_path: Path
) -> None:
    machines = tmp_path / "machines"
    machines.mkdir()
    (machines / "loan.json").write_text(json.dumps(LOAN))
    engine = sa.create_engine(pg_migrated_url)
    try:
        versions.publish(engine, LOAN, by=TEST_ACTOR)
        shadow.start_shadow(engine, MACHINE, shadow_candidate(), sample_rate=1.0, by="test")
        with (
            producer_runtime(pg_migrated_url, redis_url, machines) as runtime,
            WorkerFleet(
                database_url=pg_migrated_url,
                broker_url=redis_url,
                log_dir=tmp_path,
                concurrency=2,
                machines=machines,
                app=None,
            ) as fleet,
        ):
            fleet.start_all(2)
            for n in range(ENTITIES):
                for trigger, context in (("submit", {}), ("decide", {"score": score(n)})):
                    runtime.producer.submit(
                        EventSpec(
                            machine=MACHINE, entity_id=f"e{n}", trigger=trigger, context=context
                        )
                    )

            def compared() -> bool:
                view = shadow.show_shadow(engine, MACHINE).shadow
                return view.matched + view.mismatched == 2 * ENTITIES

            try:
                wait_until(lambda: status_counts(engine).get("pending", 0) == 0, timeout=WAIT)
                wait_until(compared, timeout=WAIT, message="every event compared")
            except TimeoutError as exc:
                raise AssertionError(f"{exc}: {status_counts(engine)}\n{fleet.log_tail()}") from exc
            fleet.stop_all()

        active = StateMachine.from_dict(LOAN)
        with engine.connect() as conn:
            states = {
                n: entity_queries.load_record(conn, MACHINE, f"e{n}") for n in range(ENTITIES)
            }
            outbox = conn.execute(sa.select(sa.func.count()).select_from(action_outbox))
            timers = conn.execute(sa.select(sa.func.count()).select_from(worker_timers))
            assert (outbox.scalar_one(), timers.scalar_one()) == (0, 0)
        assert status_counts(engine) == {"completed": 2 * ENTITIES}
        for n, record in states.items():
            expected = active.process("REVIEW", "decide", {"score": score(n)}).target_state
            assert record is not None and record.state == expected  # the active decided

        view = shadow.show_shadow(engine, MACHINE)
        edge = [n for n in range(ENTITIES) if 600 < score(n) <= 620]
        groups = {(d.source_state, d.trigger, d.kind): d for d in view.diffs}
        assert groups[("NEW", "submit", "actions")].count == ENTITIES
        target = groups[("REVIEW", "decide", "target")]
        assert (target.active_target, target.shadow_target) == ("APPROVED", "REJECTED")
        assert target.count == len(edge)
        assert {e["entity_id"] for e in target.examples} <= {f"e{n}" for n in edge}
        assert view.shadow.matched == ENTITIES - len(edge)
    finally:
        engine.dispose()
