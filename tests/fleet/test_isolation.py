"""A failure is charged to the entity (timer, action) that causes it, never to its batch-mates.

The failures are injected *in the database*: PostgreSQL triggers that raise for one entity id,
the way a constraint, a corrupt row or a value the column refuses would.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from pystator import StateMachine
from pystator.fleet.processor import REASON_CONTEXT_TOO_LARGE, Processor, ProcessorOptions
from pystator.fleet.producer import EventSpec, Producer
from pystator.fsm_core.records import ArmedTimer
from pystator.registry.machines import MachineRegistry
from pystator.schedulers.fleet_timers import DbTimerSink, TimerFiring
from pystator.services import admin
from pystator.stores.sql import event_queries, timer_queries
from pystator.stores.sql.admin_queries import EventFilter
from pystator.stores.sql.connections import dispose
from pystator.stores.sql.locking import lock_entity
from pystator.stores.sql.schema import action_outbox, worker_timers
from tests.support.waiting import wait_until
from tests.support.worker import MACHINE, Rig, make_rig

pytestmark = pytest.mark.integration


@pytest.fixture
def rig(pg_migrated_url: str) -> Iterator[Rig]:
    rig = make_rig(pg_migrated_url, retry_base=1.0)
    yield rig
    dispose(rig.engine)


def poison_table(rig: Rig, table: str, when: str, *, on: str = "INSERT OR UPDATE") -> None:
    """A trigger on ``table`` that raises for rows matching ``when`` (SQL on NEW)."""
    with rig.engine.begin() as conn:
        conn.execute(
            sa.text(
                """
                CREATE OR REPLACE FUNCTION poisoned() RETURNS trigger AS $$
                BEGIN RAISE EXCEPTION 'poisoned row for %', NEW.entity_id; END $$
                LANGUAGE plpgsql
                """
            )
        )
        conn.execute(
            sa.text(
                f"CREATE TRIGGER poison BEFORE {on} ON {table} FOR EACH ROW "
                f"WHEN ({when}) EXECUTE FUNCTION poisoned()"
            )
        )


def submit(rig: Rig, entity: str, trigger: str = "open", **context: Any) -> int:
    return rig.submit(entity, trigger, **context)


@pytest.mark.parametrize(
    ("table", "when"),
    [
        ("entity_states", "NEW.entity_id = 'poison'"),  # the entity's own state write
        ("transition_history", "NEW.entity_id = 'poison'"),  # a flushed batch statement
        ("action_outbox", "NEW.entity_id = 'poison'"),  # another flushed batch statement
    ],
    ids=["state write", "history flush", "outbox flush"],
)
def test_a_write_failing_for_one_entity_is_charged_to_that_entity_alone(
    rig: Rig, table: str, when: str
) -> None:
    healthy = [f"e{n}" for n in range(20)]
    for entity in [*healthy[:10], "poison", *healthy[10:]]:
        submit(rig, entity)
    poison = next(e.id for e in rig.events() if e.entity_id == "poison")
    poison_table(rig, table, when)

    handled = rig.processor.drain()

    assert all(rig.record(e).state == "open" for e in healthy)  # batch-mates went on
    event = rig.event(poison)
    assert (event.status, event.attempts) == ("pending", 1)  # charged one attempt, retried
    assert "poisoned row for poison" in event.errors[0]["message"]
    assert handled == 21
    for _ in range(event.max_attempts):
        rig.clock.advance(3600)
        submit(rig, f"late-{_}")  # healthy work arriving meanwhile is never held back
        rig.processor.drain()
        assert rig.record(f"late-{_}").state == "open"
    event = rig.event(poison)
    assert event.status == "dead" and len(event.errors) == event.max_attempts
    assert rig.record("poison") is None


def test_an_outage_is_not_charged_to_anyone(rig: Rig) -> None:
    submit(rig, "a")
    rig.engine.dispose()
    broken = sa.create_engine("postgresql+psycopg://nobody@127.0.0.1:1/none")
    rig.processor.engine = broken
    with pytest.raises(Exception, match="unavailable"):
        rig.processor.drain()
    rig.processor.engine = rig.engine
    (event,) = rig.events()
    assert event.attempts == 0
    broken.dispose()


# --- timers ---------------------------------------------------------------------------------

TIMER_MACHINE = "ttimer"
TIMER_CONFIG: dict[str, Any] = {
    "meta": {"version": "1.0.0", "machine_name": TIMER_MACHINE, "strict_mode": True},
    "states": [
        {"name": "idle", "type": "initial"},
        {"name": "waiting", "type": "stable"},
        {"name": "expired", "type": "terminal"},
    ],
    "transitions": [
        {"trigger": "start", "source": "idle", "dest": "waiting"},
        {"trigger": "expire", "source": "waiting", "dest": "expired", "after": "2s"},
    ],
}


def _timer(entity: str, due: Any) -> ArmedTimer:
    return ArmedTimer(
        machine=TIMER_MACHINE,
        entity_id=entity,
        key="after:0",
        state="waiting",
        entry=1,
        trigger="expire",
        due_at=due,
    )


def test_a_timer_that_cannot_fire_is_set_aside_and_the_others_fire(rig: Rig) -> None:
    now = rig.clock()
    entities = [f"t{n}" for n in range(30)]
    timers = [_timer(e, now - timedelta(milliseconds=n)) for n, e in enumerate(entities)]
    bad = _timer("poison", now - timedelta(seconds=1))  # the earliest: first in every batch
    with rig.engine.begin() as conn:
        timer_queries.arm(conn, [*timers, bad], now)
    poison_table(rig, "worker_events", "NEW.origin = 'timer' AND NEW.entity_id = 'poison'")
    firing = TimerFiring(rig.engine, clock=rig.clock, max_attempts=3, batch_size=500)

    fired = firing.fire_due()

    assert sorted(t.entity_id for t in fired) == sorted(entities)
    for attempt in (2, 3):
        rig.clock.advance(3600)
        assert firing.fire_due() == []
        if attempt < 3:
            _assert_timer_row(rig, bad, attempts=attempt, dead=False)
    _assert_timer_row(rig, bad, attempts=3, dead=True)
    rig.clock.advance(3600)
    assert firing.fire_due() == []  # set aside: never taken again
    with rig.engine.connect() as conn:
        assert timer_queries.count(conn) == 0


def _assert_timer_row(rig: Rig, timer: ArmedTimer, *, attempts: int, dead: bool) -> None:
    with rig.engine.connect() as conn:
        row = (
            conn.execute(sa.select(worker_timers).where(worker_timers.c.timer_id == timer.timer_id))
            .mappings()
            .one()
        )
    assert row["attempts"] == attempts
    assert (row["dead_at"] is not None) == dead
    assert "poisoned row for poison" in row["errors"][-1]["message"]


def test_a_fire_by_id_message_cannot_fire_a_timer_early(rig: Rig) -> None:
    now = rig.clock()
    later = _timer("x", now + timedelta(hours=1))
    with rig.engine.begin() as conn:
        timer_queries.arm(conn, [later], now)
    firing = TimerFiring(rig.engine, clock=rig.clock)
    assert firing.fire_ids([later.timer_id]) == []
    rig.clock.advance(3600)
    assert [t.timer_id for t in firing.fire_ids([later.timer_id])] == [later.timer_id]


def test_the_longest_entity_id_arms_and_fires_its_timers(rig: Rig) -> None:
    machines = MachineRegistry([StateMachine.from_dict(TIMER_CONFIG)])
    firing = TimerFiring(rig.engine, clock=rig.clock)
    processor = Processor(rig.engine, machines, timers=DbTimerSink(firing), clock=rig.clock)
    producer = Producer(engine=rig.engine, machines=machines, clock=rig.clock)
    longest = "L" * 255
    producer.submit(EventSpec(machine=TIMER_MACHINE, entity_id=longest, trigger="start"))
    producer.submit(EventSpec(machine=TIMER_MACHINE, entity_id="short", trigger="start"))
    processor.drain()
    rig.clock.advance(3)
    assert {t.entity_id for t in firing.fire_due()} == {longest, "short"}
    processor.drain()
    with rig.engine.connect() as conn:
        states = dict(
            (r[0], r[1])
            for r in conn.execute(sa.text("SELECT entity_id, state FROM entity_states"))
        )
    assert states == {longest: "expired", "short": "expired"}


# --- actions --------------------------------------------------------------------------------


def test_an_action_whose_outcome_cannot_be_recorded_does_not_block_the_others(rig: Rig) -> None:
    rig.processor.after_commit = []  # the worker "died": the sweep runs the actions
    for entity in ("a", "poison", "b"):
        submit(rig, entity)
    rig.processor.drain()
    poison_table(rig, "action_outbox", "NEW.entity_id = 'poison'", on="UPDATE")
    rig.clock.advance(rig.outbox.lease.total_seconds() + 1)
    assert rig.outbox.sweep() == 2  # a and b (poison's claim is refused on its own)
    with rig.engine.connect() as conn:
        done = dict(
            conn.execute(sa.select(action_outbox.c.entity_id, action_outbox.c.status)).all()
        )
    assert done == {"a": "done", "b": "done", "poison": "pending"}


# --- budgets --------------------------------------------------------------------------------


def test_a_batch_loads_contexts_up_to_its_byte_budget(rig: Rig) -> None:
    blob = "z" * 10_000
    for entity in ("a", "b", "c"):
        for n in range(4):
            submit(rig, entity, "open" if n == 0 else "bump", n=n, blob=blob)
    keys = [(MACHINE, e) for e in ("a", "b", "c")]
    with rig.engine.connect() as conn:
        everything = event_queries.pending_events(conn, keys, rig.clock(), limit=100)
        budgeted = event_queries.pending_events(
            conn, keys, rig.clock(), limit=100, max_bytes=45_000
        )
        tiny = event_queries.pending_events(conn, keys, rig.clock(), limit=100, max_bytes=1)
    assert sum(map(len, everything.values())) == 12
    assert all(len(events) >= 1 for events in budgeted.values())  # every entity moves
    assert sum(map(len, budgeted.values())) < 12
    assert {k: len(v) for k, v in tiny.items()} == {k: 1 for k in keys}
    for events in budgeted.values():  # what is loaded is a prefix: order holds
        assert [e.context["n"] for e in events] == list(range(len(events)))


def test_an_event_that_would_grow_the_context_past_its_cap_is_rejected(rig: Rig) -> None:
    rig.processor.options = ProcessorOptions(
        retry=rig.processor.options.retry, max_entity_context_bytes=2_000
    )
    submit(rig, "a", small=1)
    big = submit(rig, "a", "bump", blob="x" * 3_000)
    after = submit(rig, "a", "bump", n=2)
    rig.processor.drain()
    assert rig.event(big).status == "rejected"
    assert rig.event(big).outcome == {"reason": REASON_CONTEXT_TOO_LARGE}
    assert rig.event(after).status == "completed"  # the entity goes on without it
    assert "blob" not in rig.record("a").context


def waiting_for_a_lock(engine: sa.Engine) -> int:
    """Sessions of this database blocked on a lock right now (PostgreSQL)."""
    with engine.connect() as conn:
        query = (
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return int(conn.execute(sa.text(query)).scalar_one())


def test_discard_waits_for_the_worker_holding_the_entity(rig: Rig) -> None:
    event_id = submit(rig, "a")
    finished = threading.Event()
    counted: list[int] = []

    def discard() -> None:
        counted.append(admin.discard(rig.engine, EventFilter(entity_id="a")))
        finished.set()

    with rig.engine.begin() as worker:  # a worker's transaction holds the entity
        assert lock_entity(worker, MACHINE, "a")
        operator = threading.Thread(target=discard)
        operator.start()
        wait_until(lambda: waiting_for_a_lock(rig.engine) == 1, timeout=10, message="a lock wait")
        assert not finished.is_set()  # the discard waits for the lock
    operator.join(10)
    assert counted == [1] and rig.event(event_id).status == "discarded"
