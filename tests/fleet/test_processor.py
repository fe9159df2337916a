"""The apply loop against real databases: order, atomicity, retries, dead letters, outbox, locks."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from pystator.fleet.producer import EventSpec
from pystator.fsm_core.errors import StoreError
from pystator.fsm_core.records import ArmedTimer
from pystator.schedulers.fleet_timers import TimerFiring
from pystator.stores.sql import (
    admin_queries,
    entity_queries,
    outbox_queries,
    submit_queries,
    timer_queries,
)
from pystator.stores.sql.connections import dispose
from pystator.stores.sql.locking import lock_entities, lock_entity
from pystator.stores.sql.schema import action_outbox, transition_history
from tests.support.worker import MACHINE, Rig, make_rig

pytestmark = pytest.mark.integration


@pytest.fixture(params=["postgresql", "sqlite"])
def db_url(request: pytest.FixtureRequest) -> str:
    name = "pg_migrated_url" if request.param == "postgresql" else "sqlite_migrated_url"
    return str(request.getfixturevalue(name))


@pytest.fixture
def rig(db_url: str) -> Iterator[Rig]:
    rig = make_rig(db_url)
    yield rig
    dispose(rig.engine)


@pytest.fixture
def pg_rig(pg_migrated_url: str) -> Iterator[Rig]:
    rig = make_rig(pg_migrated_url)
    yield rig
    dispose(rig.engine)


def test_events_apply_once_each_in_submission_order(rig: Rig) -> None:
    entities = ["a", "b", "c"]
    for entity in entities:
        rig.submit(entity, "open")
    for n in range(5):
        for entity in entities:
            rig.submit(entity, "bump", n=n)
    for entity in entities:
        rig.submit(entity, "close")

    handled = rig.processor.drain()

    assert handled == 21
    assert {e.status for e in rig.events()} == {"completed"}
    for entity in entities:
        history = rig.history(entity)
        assert [h.version for h in history] == list(range(1, 8))
        event_ids = [h.event_id for h in history]
        assert event_ids == sorted(event_ids)  # submission order
        record = rig.record(entity)
        assert (record.state, record.version, record.context["n"]) == ("closed", 7, 4)


def test_redelivered_nudges_and_drains_are_no_ops(rig: Rig) -> None:
    rig.submit("a", "open")
    rig.processor.process_entity(MACHINE, "a")
    for _ in range(3):  # a redelivered nudge, a relay nudge, a drain
        assert rig.processor.process_entity(MACHINE, "a") == 0
        assert rig.processor.drain() == 0
    assert rig.record("a").version == 1
    assert rig.count(transition_history) == 1
    assert rig.count(action_outbox) == 1
    assert len(rig.hooks.calls) == 1


def test_business_rejections_are_recorded_and_not_retried(rig: Rig) -> None:
    undefined = rig.submit("a", "bump")  # not defined in 'new'
    rig.submit("a", "open")
    guarded = rig.submit("a", "bump", reject=True)
    rig.submit("a", "close")
    terminal = rig.submit("a", "bump")

    rig.processor.drain()
    rig.clock.advance(3600)
    assert rig.processor.drain() == 0

    reasons = {e.id: (e.status, e.attempts, (e.outcome or {}).get("reason")) for e in rig.events()}
    assert reasons[undefined] == ("rejected", 1, "undefined_trigger")
    assert reasons[guarded] == ("rejected", 1, "guard_rejected")
    assert reasons[terminal] == ("rejected", 1, "terminal_state")
    assert rig.record("a").state == "closed"


def test_poison_event_retries_then_dead_letters_and_later_events_wait_then_proceed(
    rig: Rig,
) -> None:
    from pystator.fleet.producer import EventSpec

    rig.submit("a", "open")
    poison = rig.producer.submit(
        EventSpec(
            machine=MACHINE, entity_id="a", trigger="bump", context={"poison": 1}, max_attempts=3
        )
    ).event_id
    later = rig.submit("a", "bump", n=2)

    rig.processor.drain()
    # attempt 1 failed: the poison event waits for its retry and holds back the later event
    assert rig.event(poison).status == "pending"
    assert rig.event(poison).attempts == 1
    assert rig.event(later).status == "pending"
    assert rig.record("a").version == 1
    assert rig.processor.drain() == 0  # not due yet: nothing to claim

    for _ in range(2):
        rig.clock.advance(120)
        rig.processor.drain()

    dead = rig.event(poison)
    assert dead.status == "dead"
    assert [e["attempt"] for e in dead.errors] == [1, 2, 3]
    assert all(e["error"] == "GuardEvaluationError" or "Poison" in str(e) for e in dead.errors)
    assert rig.event(later).status == "completed"
    assert rig.record("a").context["n"] == 2


def test_transient_failure_is_retried_and_then_applied(rig: Rig) -> None:
    rig.hooks.flaky_failures = 1
    rig.submit("a", "open")
    flaky = rig.submit("a", "bump", flaky=True)

    rig.processor.drain()
    assert rig.event(flaky).status == "pending"
    rig.clock.advance(60)
    rig.processor.drain()

    event = rig.event(flaky)
    assert (event.status, event.attempts, len(event.errors)) == ("completed", 2, 1)
    assert rig.record("a").version == 2


def test_a_failure_inside_the_commit_leaves_nothing_half_applied(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    rig.submit("a", "open")
    rig.submit("b", "open")

    def broken(*_args: Any, **_kwargs: Any) -> list[int]:
        raise sa.exc.OperationalError("INSERT INTO action_outbox", {}, Exception("disk full"))

    # entity rows, history and completions are written before the outbox insert fails
    monkeypatch.setattr(outbox_queries, "insert_outbox", broken)
    with pytest.raises(StoreError):
        rig.processor.drain()

    assert rig.record("a") is None and rig.record("b") is None
    assert rig.count(transition_history) == 0
    assert [(e.status, e.attempts) for e in rig.events()] == [("pending", 0)] * 2

    monkeypatch.undo()
    assert rig.processor.drain() == 2
    assert rig.count(transition_history) == 2
    assert rig.count(action_outbox) == 2


def test_version_conflict_reloads_and_recomputes_instead_of_overwriting(
    pg_rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    rig = pg_rig  # SQLite has a single writer: no concurrent write can happen there
    rig.submit("a", "open")
    rig.processor.drain()
    rig.submit("a", "bump", n=1)
    real = entity_queries.load_records

    def stale_once(conn: sa.Connection, keys: Any) -> dict[Any, Any]:
        records = real(conn, keys)
        # someone else (an Orchestrator, another tool) writes version 2 meanwhile
        with rig.engine.begin() as other:
            current = entity_queries.load_record(other, MACHINE, "a")
            bumped = type(current)(
                machine=MACHINE,
                entity_id="a",
                state="open",
                context={**current.context, "outside": True},
                version=2,
                entries=current.entries,
            )
            entity_queries.update_record(other, bumped, expected_version=1)
        monkeypatch.setattr(entity_queries, "load_records", real)
        return records

    monkeypatch.setattr(entity_queries, "load_records", stale_once)
    rig.processor.drain()

    record = rig.record("a")
    assert record.version == 3
    assert record.context["outside"] is True  # the outside write was not overwritten
    assert record.context["n"] == 1


def test_actions_run_after_commit_with_the_outbox_id_as_token(rig: Rig) -> None:
    seen: list[tuple[Mapping[str, Any], str]] = []

    def check(ctx: Mapping[str, Any]) -> None:
        token = ctx["_pystator"]
        with rig.engine.connect() as conn:  # a separate connection sees the committed event
            status = admin_queries.get_event(conn, token["event_id"]).status
        seen.append((token, status))

    rig.hooks.on_action = check
    event_id = rig.submit("a", "open", order=7)
    rig.processor.drain()

    ((token, status),) = seen
    assert status == "completed"
    with rig.engine.connect() as conn:
        (row,) = outbox_queries.list_outbox(conn, event_id=event_id)
    assert token["action_id"] == row.id and token["event_id"] == event_id
    assert token["entity_id"] == "a" and token["entity_version"] == 1
    assert rig.hooks.calls[0]["order"] == 7
    assert rig.count(action_outbox, status="done") == 1


def test_failing_action_is_retried_then_dead_without_touching_the_event(rig: Rig) -> None:
    def explode(_ctx: Mapping[str, Any]) -> None:
        raise RuntimeError("smtp down")

    rig.hooks.on_action = explode
    event_id = rig.submit("a", "open")
    rig.processor.drain()
    assert rig.count(action_outbox, status="pending") == 1
    for _ in range(3):
        rig.clock.advance(120)
        rig.outbox.sweep()
    assert rig.count(action_outbox, status="dead") == 1
    assert rig.event(event_id).status == "completed"


def test_stranded_outbox_rows_are_swept_after_their_lease(rig: Rig) -> None:
    rig.processor.after_commit = []  # the worker "dies" right after commit
    rig.submit("a", "open")
    rig.processor.drain()
    assert rig.outbox.sweep() == 0  # still leased to the worker that committed it
    rig.clock.advance(31)
    assert rig.outbox.sweep() == 1
    assert len(rig.hooks.calls) == 1


def test_a_sweep_given_time_takes_page_after_page_until_one_is_short(rig: Rig) -> None:
    rig.processor.after_commit = []  # the worker "dies" right after commit: five rows stranded
    for n in range(5):
        rig.submit(f"e{n}", "open")
    rig.processor.drain()
    rig.clock.advance(31)
    assert rig.outbox.sweep(limit=2) == 2  # without time: one page
    assert rig.outbox.sweep(limit=2, seconds=60) == 3  # a full page, then a short one ends it
    assert len(rig.hooks.calls) == 5
    assert rig.count(action_outbox, status="done") == 5


def test_a_sweep_given_time_does_not_take_its_failures_again(rig: Rig) -> None:
    attempts: list[str] = []

    def explode(ctx: Mapping[str, Any]) -> None:
        attempts.append(str(ctx["_pystator"]["entity_id"]))
        raise RuntimeError("smtp down")

    rig.hooks.on_action = explode
    rig.processor.after_commit = []
    for n in range(5):
        rig.submit(f"e{n}", "open")
    rig.processor.drain()
    rig.clock.advance(31)
    assert rig.outbox.sweep(limit=2, seconds=60) == 0
    assert sorted(attempts) == [f"e{n}" for n in range(5)]  # once each; retries wait their time
    assert rig.count(action_outbox, status="pending") == 5


def test_a_stale_timer_is_dropped(rig: Rig) -> None:
    rig.submit("a", "open")
    rig.processor.drain()
    timer = ArmedTimer(
        machine=MACHINE, entity_id="a", key="t", state="new", entry=0, trigger="close"
    )
    with rig.engine.begin() as conn:
        (row,) = submit_queries.insert_timer_events(conn, [timer], rig.clock())
    rig.processor.drain()
    assert rig.event(row.id).status == "stale"
    assert rig.record("a").state == "open"


def test_parallel_workers_never_apply_an_event_twice_and_keep_order(pg_rig: Rig) -> None:
    rig = pg_rig
    from pystator.fleet.producer import EventSpec

    specs = [EventSpec(machine=MACHINE, entity_id=f"e{i}", trigger="open") for i in range(40)]
    specs += [
        EventSpec(machine=MACHINE, entity_id=f"e{i}", trigger="bump", context={"n": n})
        for n in range(6)
        for i in range(40)
    ]
    rig.producer.submit_many(specs)
    errors: list[BaseException] = []

    def work(index: int) -> None:
        try:
            for _ in range(4):
                if index % 2:
                    rig.processor.drain_once(limit=8)
                else:
                    for i in range(40):
                        rig.processor.process_entity(MACHINE, f"e{(i + index) % 40}")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    rig.processor.drain()

    assert not errors
    assert {e.status for e in rig.events()} == {"completed"}
    with rig.engine.connect() as conn:
        rows = conn.execute(
            sa.select(transition_history.c.event_id, transition_history.c.entity_id)
        ).all()
    event_ids = [r[0] for r in rows]
    assert len(event_ids) == len(set(event_ids)) == len(specs)
    for i in range(40):
        history = rig.history(f"e{i}")
        assert [h.event_id for h in history] == sorted(h.event_id for h in history)
        assert rig.record(f"e{i}").context["n"] == 5


def test_the_lock_holder_picks_up_events_submitted_while_it_was_busy(pg_rig: Rig) -> None:
    rig = pg_rig
    inside = threading.Event()
    release = threading.Event()

    def slow(ctx: Mapping[str, Any]) -> bool:
        if ctx.get("slow"):
            inside.set()
            assert release.wait(10)
        return True

    rig.machines.get(MACHINE).guard_registry.register("fragile", slow)
    rig.submit("a", "open")
    rig.processor.drain()
    rig.submit("a", "bump", slow=True)
    holder = threading.Thread(target=rig.processor.process_entity, args=(MACHINE, "a"))
    holder.start()
    assert inside.wait(10)

    late = rig.submit("a", "bump", slow=False, n=9)
    # the nudge for the late event reaches another worker: the entity is locked, it returns
    assert rig.processor.process_entity(MACHINE, "a") == 0
    release.set()
    holder.join(10)

    assert rig.event(late).status == "completed"  # the holder re-checked after its commit
    assert rig.record("a").version == 3


def test_claims_skip_entities_locked_by_another_transaction(pg_rig: Rig) -> None:
    rig = pg_rig
    rig.submit("a", "open")
    rig.submit("b", "open")
    with rig.engine.begin() as conn:
        assert lock_entity(conn, MACHINE, "a")
        assert rig.processor.drain() == 1  # only b
    assert rig.processor.drain() == 1  # a, once the lock is gone


def test_locking_several_entities_at_once_takes_the_same_locks_as_one_by_one(pg_rig: Rig) -> None:
    engine = pg_rig.engine
    keys = [(MACHINE, "c"), (MACHINE, "a"), (MACHINE, "b"), (MACHINE, "c")]
    with engine.begin() as held:
        assert lock_entity(held, MACHINE, "a")
        with engine.begin() as conn:
            assert lock_entities(conn, keys) == [(MACHINE, "c"), (MACHINE, "b")]  # a is held
            with engine.begin() as other:
                assert not lock_entity(other, MACHINE, "b")
                assert lock_entities(other, [(MACHINE, "c"), (MACHINE, "d")]) == [(MACHINE, "d")]
    with engine.begin() as conn:
        assert lock_entities(conn, keys) == [(MACHINE, "c"), (MACHINE, "a"), (MACHINE, "b")]


def test_a_single_entity_nudge_costs_two_reads_and_a_six_statement_transaction(
    pg_rig: Rig,
) -> None:
    """The round trips of the latency path, counted: a read asks whether the entity is due, one
    transaction locks it, loads its events and record, writes the record, its history row and
    the event's completion, and a read after the commit looks for anything submitted meanwhile."""
    rig = pg_rig
    rig.submit("a", "open")
    rig.processor.process_entities([(MACHINE, "a")])  # pools and caches warmed
    rig.submit("a", "close")  # a transition without actions
    statements: list[str] = []
    me = threading.get_ident()

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if threading.get_ident() == me:
            words = statement.split()
            statements.append(
                " ".join(words[:3] if words[0] in ("INSERT", "UPDATE") else words[:1])
            )

    sa.event.listen(sa.engine.Engine, "before_cursor_execute", count)
    try:
        assert rig.processor.process_entities([(MACHINE, "a")]) == 1
    finally:
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", count)
    assert statements == [
        "SELECT",  # due?
        "SELECT",  # lock
        "SELECT",  # pending events
        "SELECT",  # entity record
        "UPDATE entity_states SET",
        "INSERT INTO transition_history",
        "UPDATE worker_events AS",  # the event completed
        "SELECT",  # due again? (nothing)
    ]


def test_a_producer_whose_clock_runs_ahead_is_applied_by_its_own_nudge(rig: Rig) -> None:
    """An immediate event is due whatever the worker's clock says (it was stamped due at its own
    submission); a delayed one and a retry still wait for the worker's clock."""
    skew = timedelta(seconds=5)
    rig.producer.clock = lambda: rig.clock() + skew  # the producer's host runs 5 s ahead
    rig.submit("a", "open")
    assert rig.processor.process_entities([(MACHINE, "a")]) == 1
    spec = EventSpec(
        machine=MACHINE, entity_id="a", trigger="close", fires_at=rig.clock() + 2 * skew
    )
    rig.producer.submit(spec)  # 5 s after submission by the producer's clock
    assert rig.processor.process_entities([(MACHINE, "a")]) == 0
    rig.clock.advance(9)
    assert rig.processor.process_entities([(MACHINE, "a")]) == 0
    rig.clock.advance(1)
    assert rig.processor.process_entities([(MACHINE, "a")]) == 1
    assert rig.record("a").state == "closed"


def test_a_retry_waits_for_the_workers_clock_even_from_a_producer_running_ahead(
    rig: Rig,
) -> None:
    rig.producer.clock = lambda: rig.clock() + timedelta(seconds=60)
    rig.submit("b", "open")
    rig.processor.process_entities([(MACHINE, "b")])
    rig.submit("b", "bump", poison=True)
    assert rig.processor.process_entities([(MACHINE, "b")]) == 1  # a failed attempt
    (event,) = [e for e in rig.events() if e.trigger == "bump"]
    assert event.status == "pending" and event.fires_at > event.created_at
    assert rig.processor.process_entities([(MACHINE, "b")]) == 0  # waits for its backoff


def test_timers_fired_by_an_external_scheduler_apply_once_and_only_if_fresh(rig: Rig) -> None:
    rig.submit("a", "open")
    rig.processor.drain()
    now = rig.clock()
    fresh = ArmedTimer(
        machine=MACHINE, entity_id="a", key="t", state="open", entry=1, trigger="close", due_at=now
    )
    stale = ArmedTimer(
        machine=MACHINE, entity_id="a", key="u", state="open", entry=0, trigger="close", due_at=now
    )
    with rig.engine.begin() as conn:
        timer_queries.arm(conn, [fresh, stale], now)
    firing = TimerFiring(rig.engine, clock=rig.clock)
    ids = [fresh.timer_id, stale.timer_id]
    assert {t.timer_id for t in firing.fire_ids(ids)} == set(ids)
    assert firing.fire_ids(ids) == []  # fired once: a second message finds nothing
    rig.processor.drain()
    statuses = {e.timer_key: e.status for e in rig.events() if e.origin == "timer"}
    assert statuses == {"t": "completed", "u": "stale"}
    assert rig.record("a").state == "closed"


def test_one_nudge_naming_many_entities_applies_them_all(rig: Rig) -> None:
    for entity in ("a", "b", "c"):
        rig.submit(entity, "open")
        rig.submit(entity, "bump", n=1)
    keys = [(MACHINE, "a"), (MACHINE, "b"), (MACHINE, "c"), (MACHINE, "a")]
    assert rig.processor.process_entities(keys) == 6
    assert all(rig.record(e).version == 2 for e in ("a", "b", "c"))
    assert rig.processor.process_entities(keys) == 0  # redelivered: nothing left


def test_a_many_entity_nudge_skips_entities_another_worker_holds(pg_rig: Rig) -> None:
    rig = pg_rig
    rig.submit("a", "open")
    rig.submit("b", "open")
    with rig.engine.begin() as conn:
        assert lock_entity(conn, MACHINE, "a")
        assert rig.processor.process_entities([(MACHINE, "a"), (MACHINE, "b")]) == 1
    assert rig.record("a") is None  # left to the lock holder
    assert rig.processor.process_entities([(MACHINE, "a")]) == 1
