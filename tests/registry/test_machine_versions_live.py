"""A new machine version never strands an entity (issue 25, part 1), on PostgreSQL and SQLite:
the compatibility report, refusal with counts, a state map moving entities under their lock and
recorded as a migration, pinned and auto-upgrade, and undefined-state events that are not
retried."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa

from pystator.fleet.nudge import NullNudger
from pystator.fleet.processor import Processor
from pystator.fleet.producer import EventSpec, Producer
from pystator.fsm_core.errors import ConfigurationError
from pystator.registry import versions
from pystator.registry.compatibility import IncompatibleVersionError, compatibility_report
from pystator.registry.machines import MachineRegistry
from pystator.registry.stored import StoredMachines
from pystator.stores.sql import entity_queries, history_queries
from pystator.stores.sql.connections import dispose, fleet_engine
from pystator.stores.sql.schema import worker_events, worker_timers
from tests.support.api_clients import TEST_ACTOR

pytestmark = pytest.mark.integration

NAME = "review"


def v1() -> dict[str, Any]:
    """NEW -> REVIEW -> DONE, with a reminder timer while in REVIEW."""
    return {
        "meta": {"version": "1", "machine_name": NAME},
        "states": [
            {"name": "NEW", "type": "initial"},
            {"name": "REVIEW", "type": "stable"},
            {"name": "DONE", "type": "terminal"},
        ],
        "transitions": [
            {"trigger": "submit", "source": "NEW", "dest": "REVIEW"},
            {"trigger": "approve", "source": "REVIEW", "dest": "DONE"},
            {"trigger": "nag", "source": "REVIEW", "dest": "REVIEW", "after": "1h"},
        ],
    }


def v2() -> dict[str, Any]:
    """REVIEW renamed CHECK (its timer gone)."""
    config = copy.deepcopy(v1())
    config["meta"]["version"] = "2"
    config["states"][1] = {"name": "CHECK", "type": "stable"}
    config["transitions"] = [
        {"trigger": "submit", "source": "NEW", "dest": "CHECK"},
        {"trigger": "approve", "source": "CHECK", "dest": "DONE"},
    ]
    return config


@dataclass
class Fleet:
    engine: sa.Engine
    stored: StoredMachines
    machines: MachineRegistry
    processor: Processor
    producer: Producer

    def submit(self, entity_id: str, trigger: str) -> int:
        spec = EventSpec(machine=NAME, entity_id=entity_id, trigger=trigger)
        return self.producer.submit(spec).event_id

    def publish(self, config: dict[str, Any], **kw: Any) -> versions.Published:
        published = versions.publish(self.engine, config, by=TEST_ACTOR, **kw)
        self.stored.refresh()
        return published

    def drain(self) -> None:
        self.processor.drain()

    def record(self, entity_id: str) -> Any:
        with self.engine.connect() as conn:
            return entity_queries.load_record(conn, NAME, entity_id)

    def event(self, event_id: int) -> Any:
        with self.engine.connect() as conn:
            return (
                conn.execute(sa.select(worker_events).where(worker_events.c.id == event_id))
                .mappings()
                .one()
            )

    def history(self, entity_id: str) -> list[Any]:
        with self.engine.connect() as conn:
            return history_queries.load_history(conn, NAME, entity_id)

    def timers(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(worker_timers)).scalar())


@pytest.fixture(params=["postgresql", "sqlite"])
def fleet(request: pytest.FixtureRequest) -> Iterator[Fleet]:
    name = "pg_migrated_url" if request.param == "postgresql" else "sqlite_migrated_url"
    engine = fleet_engine(str(request.getfixturevalue(name)))
    stored = StoredMachines(engine)
    machines = MachineRegistry()
    machines.attach(stored)
    producer = Producer(engine=engine, machines=machines, nudger=NullNudger())
    yield Fleet(engine, stored, machines, Processor(engine, machines), producer)
    stored.close()
    dispose(engine)


def in_review(fleet: Fleet) -> None:
    fleet.publish(v1())
    fleet.submit("x1", "submit")
    fleet.submit("x2", "submit")
    fleet.drain()
    assert fleet.record("x1").state == "REVIEW"
    assert fleet.timers() == 2  # the reminders of x1 and x2


def test_renaming_a_state_with_entities_is_refused_with_counts(fleet: Fleet) -> None:
    in_review(fleet)
    fleet.submit("x1", "approve")  # pending: needs REVIEW --approve-->
    report = compatibility_report(fleet.engine, NAME, v2())
    assert not report.ok
    removed = [p for p in report.problems if p.kind == "state_removed"]
    assert [(p.state, p.entities, p.blocking) for p in removed] == [("REVIEW", 2, True)]
    orphaned = [p for p in report.problems if p.kind == "timer_orphaned"]
    assert [(p.state, p.trigger, p.armed_timers) for p in orphaned] == [("REVIEW", "nag", 2)]
    assert report.removed_states == ("REVIEW",) and report.added_states == ("CHECK",)
    with pytest.raises(IncompatibleVersionError, match="'REVIEW' is removed and 2 entities") as e:
        fleet.publish(v2())
    assert e.value.details["report"]["problems"][0]["entities"] == 2
    dry = versions.publish(fleet.engine, v2(), by=TEST_ACTOR, dry_run=True)
    assert dry.dry_run and dry.refused and not dry.created and dry.version == 1
    assert versions.show_machine(fleet.engine, NAME).record.current_version == 1
    with pytest.raises(ConfigurationError, match="no state 'NOWHERE'"):
        fleet.publish(v2(), state_map={"REVIEW": "NOWHERE"})


def test_a_state_map_moves_entities_under_lock_and_records_a_migration(fleet: Fleet) -> None:
    in_review(fleet)
    published = fleet.publish(v2(), state_map={"REVIEW": "CHECK"})
    assert (published.version, published.created) == (2, True)
    assert published.migration is not None
    assert sorted(m.entity_id for m in published.migration.moved) == ["x1", "x2"]
    assert published.migration.cancelled_timers == 2
    assert fleet.timers() == 0
    record = fleet.record("x1")
    assert (record.state, record.version, record.machine_version) == ("CHECK", 2, 2)
    last = fleet.history("x1")[-1]
    assert (last.origin, last.source_state, last.target_state) == ("migration", "REVIEW", "CHECK")
    assert last.payload["from_version"] == 1 and last.payload["to_version"] == 2
    assert last.machine_version == 2
    event_id = fleet.submit("x1", "approve")
    fleet.drain()
    assert fleet.event(event_id)["status"] == "completed"
    assert fleet.record("x1").state == "DONE"


def test_an_undefined_state_event_is_dead_at_once_with_the_reason(fleet: Fleet) -> None:
    in_review(fleet)
    # a version published without the check (as before this change), then an event
    with fleet.engine.begin() as conn:
        conn.execute(sa.text("UPDATE entity_states SET state = 'GONE' WHERE entity_id = 'x1'"))
    event_id = fleet.submit("x1", "approve")
    fleet.drain()
    event = fleet.event(event_id)
    assert (event["status"], event["attempts"]) == ("dead", 1)
    assert "'GONE'" in event["errors"][0]["message"]
    assert "not retried" in event["errors"][0]["message"]
    moved = fleet.publish(v1(), state_map={"GONE": "REVIEW"})  # same version: migrate only
    assert not moved.created and moved.migration is not None
    assert [m.entity_id for m in moved.migration.moved] == ["x1"]
    again = fleet.submit("x1", "approve")
    fleet.drain()
    assert fleet.event(again)["status"] == "completed"


def test_pinned_entities_keep_their_version_until_migrated(fleet: Fleet) -> None:
    in_review(fleet)
    published = fleet.publish(v2(), upgrade_policy="pinned")  # no map needed: nobody strands
    assert (published.version, published.upgrade_policy) == (2, "pinned")
    assert fleet.timers() == 2  # v1's entities keep their reminders
    nag = fleet.submit("x1", "nag")  # only v1 has it: accepted, applied with v1
    done = fleet.submit("x2", "approve")  # x2 is on v1: REVIEW --approve--> DONE applies
    fleet.submit("x3", "submit")  # a new entity starts on v2
    fleet.drain()
    assert fleet.event(done)["status"] == "completed"
    assert fleet.event(nag)["status"] == "completed"
    assert (fleet.record("x2").state, fleet.record("x2").machine_version) == ("DONE", 1)
    assert (fleet.record("x3").state, fleet.record("x3").machine_version) == ("CHECK", 2)
    assert fleet.record("x1").machine_version == 1  # stamped with the version it was on
    migrated = fleet.publish(v2(), state_map={"REVIEW": "CHECK"})  # same definition: migrate
    assert migrated.migration is not None
    assert [m.entity_id for m in migrated.migration.moved] == ["x1"]
    assert fleet.record("x1").machine_version == 2
    event_id = fleet.submit("x1", "approve")
    fleet.drain()
    assert fleet.event(event_id)["status"] == "completed"


def test_auto_upgrade_moves_entities_on_their_next_event(fleet: Fleet) -> None:
    fleet.publish(v1())
    fleet.submit("x1", "submit")
    fleet.drain()
    assert fleet.record("x1").machine_version == 1
    changed = v1()
    changed["transitions"].append({"trigger": "reopen", "source": "DONE", "dest": "NEW"})
    changed["states"][2]["type"] = "stable"
    assert fleet.publish(changed).upgrade_policy == "auto"
    fleet.submit("x1", "approve")
    fleet.drain()
    assert (fleet.record("x1").state, fleet.record("x1").machine_version) == ("DONE", 2)


def test_a_worker_behind_a_publish_retries_instead_of_failing(fleet: Fleet) -> None:
    in_review(fleet)
    old = StoredMachines(fleet.engine, refresh_seconds=3600)  # refreshed once: stays on v1
    old.refresh()
    behind = MachineRegistry()
    behind.attach(old)
    try:
        fleet.publish(v2(), state_map={"REVIEW": "CHECK"})
        event_id = fleet.submit("x1", "approve")
        # The full backoff, not a jittered one: a delay of a few ms would be due again within
        # this drain, which would count a second attempt.
        Processor(fleet.engine, behind, rand=lambda: 1.0).drain()
        event = fleet.event(event_id)
        assert (event["status"], event["attempts"]) == ("pending", 1)
        assert "retried once the registry refreshes" in event["errors"][0]["message"]
    finally:
        old.close()
    with fleet.engine.begin() as conn:  # its retry is due now (not after the backoff)
        conn.execute(sa.update(worker_events).values(fires_at=sa.func.current_timestamp()))
    fleet.drain()
    assert fleet.event(event_id)["status"] == "completed"
    assert fleet.record("x1").state == "DONE"
