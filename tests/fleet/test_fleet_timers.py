"""The fleet's timers against real databases: armed with the state change, cancelled on leaving,
fired once, never stale, never holding back the entity's later events."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from pystator import StateMachine
from pystator.config.settings import Settings
from pystator.fleet.composition import make_timer_sink
from pystator.fleet.nudge import NullNudger
from pystator.fleet.processor import Processor
from pystator.fleet.producer import EventSpec, Producer
from pystator.fsm_core.errors import SettingsError
from pystator.fsm_core.records import ArmedTimer
from pystator.registry.machines import MachineRegistry
from pystator.schedulers.fleet_timers import DbTimerSink, TimerFiring
from pystator.stores.sql import entity_queries, history_queries, timer_queries
from pystator.stores.sql.connections import dispose, fleet_engine
from pystator.stores.sql.schema import worker_timers
from tests.support.worker import FakeClock

pytestmark = pytest.mark.integration

MACHINE = "ttimer"
# idle --start--> waiting --finish--> done; waiting --expire (after 2s)--> expired;
# waiting --again--> waiting (re-entry: fresh timer); waiting has a 5s timeout -> timed_out
CONFIG: dict[str, Any] = {
    "meta": {"version": "1.0.0", "machine_name": MACHINE, "strict_mode": True},
    "states": [
        {"name": "idle", "type": "initial"},
        {
            "name": "waiting",
            "type": "stable",
            "timeout": {"after": "5s", "destination": "timed_out"},
        },
        {"name": "done", "type": "terminal"},
        {"name": "expired", "type": "terminal"},
        {"name": "timed_out", "type": "terminal"},
    ],
    "transitions": [
        {"trigger": "start", "source": "idle", "dest": "waiting"},
        {"trigger": "finish", "source": "waiting", "dest": "done"},
        {"trigger": "again", "source": "waiting", "dest": "waiting"},
        {"trigger": "expire", "source": "waiting", "dest": "expired", "after": "2s"},
    ],
}


class TimerRig:
    """A producer, a processor and a table scheduler on one database, on a fake clock."""

    def __init__(self, url: str) -> None:
        self.clock = FakeClock()
        self.engine = fleet_engine(url)
        self.machines = MachineRegistry([StateMachine.from_dict(CONFIG)])
        self.firing = TimerFiring(self.engine, clock=self.clock)
        self.timers = DbTimerSink(self.firing)
        self.processor = Processor(self.engine, self.machines, timers=self.timers, clock=self.clock)
        self.producer = Producer(
            engine=self.engine, machines=self.machines, nudger=NullNudger(), clock=self.clock
        )

    def submit(self, entity_id: str, trigger: str) -> int:
        spec = EventSpec(machine=MACHINE, entity_id=entity_id, trigger=trigger)
        return self.producer.submit(spec).event_id

    def state(self, entity_id: str) -> str:
        with self.engine.connect() as conn:
            record = entity_queries.load_record(conn, MACHINE, entity_id)
        assert record is not None
        return record.state

    def armed(self) -> list[str]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(worker_timers.c.timer_id)).scalars().all()
        return sorted(rows)

    def history(self, entity_id: str) -> list[tuple[str, str | None, str]]:
        with self.engine.connect() as conn:
            rows = history_queries.load_history(conn, MACHINE, entity_id)
        return [(h.target_state, h.trigger, h.origin) for h in rows]


@pytest.fixture(params=["postgresql", "sqlite"])
def rig(request: pytest.FixtureRequest) -> Iterator[TimerRig]:
    name = "pg_migrated_url" if request.param == "postgresql" else "sqlite_migrated_url"
    rig = TimerRig(str(request.getfixturevalue(name)))
    yield rig
    dispose(rig.engine)


def test_entering_arms_and_a_due_timer_fires_once(rig: TimerRig) -> None:
    rig.submit("a", "start")
    rig.processor.drain()
    assert len(rig.armed()) == 2  # the after: 2s transition and the 5s state timeout
    assert rig.timers.poll_once() == 0  # nothing due yet

    rig.clock.advance(2.5)
    assert rig.timers.poll_once() == 1
    assert rig.timers.poll_once() == 0  # taken: never again
    rig.processor.drain()

    assert rig.state("a") == "expired"
    assert rig.history("a")[-1] == ("expired", "expire", "timer")
    assert rig.armed() == []  # leaving 'waiting' cancelled the 5s timeout


def test_leaving_before_the_due_time_cancels_and_later_events_are_not_held_back(
    rig: TimerRig,
) -> None:
    rig.submit("a", "start")
    rig.processor.drain()
    rig.clock.advance(0.5)
    rig.submit("a", "finish")  # submitted long before the timer is due: applies now
    assert rig.processor.drain() == 1
    assert rig.state("a") == "done"
    assert rig.armed() == []

    rig.clock.advance(10)
    assert rig.timers.poll_once() == 0
    assert rig.processor.drain() == 0
    assert rig.state("a") == "done"


def test_re_entering_arms_fresh_timers_and_the_old_entry_never_fires(rig: TimerRig) -> None:
    rig.submit("a", "start")
    rig.processor.drain()
    first = rig.armed()
    rig.clock.advance(1.5)
    rig.submit("a", "again")  # waiting -> waiting: a new entry, fresh timers
    rig.processor.drain()
    second = rig.armed()
    assert len(second) == 2 and not set(first) & set(second)

    rig.clock.advance(1.0)  # the first entry's 2s timer would be due now
    assert rig.timers.poll_once() == 0
    rig.clock.advance(1.0)  # the second entry's is
    assert rig.timers.poll_once() == 1
    rig.processor.drain()
    assert rig.state("a") == "expired"


def test_a_timer_fired_after_its_entry_was_left_is_recorded_stale(rig: TimerRig) -> None:
    rig.submit("a", "start")
    rig.processor.drain()
    rig.clock.advance(3)
    rig.submit("a", "finish")  # submitted after the due time but before anyone fired it
    assert rig.timers.poll_once() == 1  # the fire's event comes after 'finish' in order
    rig.processor.drain()

    assert rig.state("a") == "done"
    with rig.engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT trigger, status FROM worker_events ORDER BY id")).all()
    assert [tuple(r) for r in rows] == [
        ("start", "completed"),
        ("finish", "completed"),
        ("expire", "stale"),
    ]


def test_state_timeout_fires_when_no_after_transition_applies(rig: TimerRig) -> None:
    machine = StateMachine.from_dict(
        {**CONFIG, "transitions": [t for t in CONFIG["transitions"] if "after" not in t]}
    )
    rig.machines = MachineRegistry([machine])
    rig.processor.machines = rig.machines
    rig.submit("a", "start")
    rig.processor.drain()
    rig.clock.advance(5)
    assert rig.timers.poll_once() == 1
    rig.processor.drain()
    assert rig.state("a") == "timed_out"


def test_arming_twice_is_one_timer_and_take_by_id_is_exactly_once(rig: TimerRig) -> None:
    now = rig.clock()
    timer = ArmedTimer(
        machine=MACHINE,
        entity_id="x",
        key="k",
        state="waiting",
        entry=1,
        trigger="expire",
        due_at=now,
    )
    with rig.engine.begin() as conn:
        timer_queries.arm(conn, [timer, timer], now)
        timer_queries.arm(conn, [timer], now)
        assert timer_queries.count(conn) == 1
    assert [t.timer_id for t in rig.firing.fire_ids([timer.timer_id])] == [timer.timer_id]
    assert rig.firing.fire_ids([timer.timer_id]) == []  # a redelivered fire finds nothing
    assert rig.firing.fire_due() == []


def test_concurrent_pollers_fire_each_timer_exactly_once(pg_migrated_url: str) -> None:
    rig = TimerRig(pg_migrated_url)
    rig.firing.batch_size = 25
    now = rig.clock()
    timers = [
        ArmedTimer(
            machine=MACHINE,
            entity_id=f"e{n}",
            key="k",
            state="waiting",
            entry=1,
            trigger="expire",
            due_at=now - timedelta(milliseconds=n),
        )
        for n in range(600)
    ]
    with rig.engine.begin() as conn:
        timer_queries.arm(conn, timers, now)
    fired: list[str] = []
    lock = threading.Lock()

    def poll() -> None:
        while True:
            batch = rig.firing.fire_due()
            if not batch:
                return
            with lock:
                fired.extend(t.timer_id for t in batch)

    threads = [threading.Thread(target=poll) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with rig.engine.connect() as conn:
        events = conn.execute(sa.text("SELECT count(*) FROM worker_events")).scalar_one()
    assert sorted(fired) == sorted(t.timer_id for t in timers)
    assert events == 600
    dispose(rig.engine)


def test_celery_hand_off_marks_timers_within_the_horizon(pg_migrated_url: str) -> None:
    rig = TimerRig(pg_migrated_url)
    now = rig.clock()

    def timer(n: int, seconds: float) -> ArmedTimer:
        return ArmedTimer(
            machine=MACHINE,
            entity_id=f"e{n}",
            key="k",
            state="waiting",
            entry=1,
            trigger="expire",
            due_at=now + timedelta(seconds=seconds),
        )

    with rig.engine.begin() as conn:
        timer_queries.arm(
            conn, [timer(1, 5), timer(2, 3600)], now, handed_until=now + timedelta(seconds=60)
        )
        timer_queries.arm(conn, [timer(3, 30), timer(4, 7200)], now)
        handed = timer_queries.hand_off(conn, now + timedelta(seconds=60), now, 100)
        assert [t.entity_id for t in handed] == ["e3"]  # e1 was handed at arm time
        assert timer_queries.hand_off(conn, now + timedelta(seconds=60), now, 100) == []
    dispose(rig.engine)


def test_the_fleet_refuses_the_in_process_scheduler() -> None:
    settings = Settings(scheduler="asyncio")
    firing = TimerFiring(sa.create_engine("sqlite://"))
    with pytest.raises(SettingsError, match="asyncio"):
        make_timer_sink(settings, firing, None)


def test_the_celery_timer_backend_needs_a_real_broker() -> None:
    firing = TimerFiring(sa.create_engine("sqlite://"))
    with pytest.raises(SettingsError, match="real broker"):
        make_timer_sink(Settings(scheduler="celery"), firing, None)
