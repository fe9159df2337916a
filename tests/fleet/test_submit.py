"""Submitting events: idempotency, batches, in-transaction enqueue, and refusal of bad input."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from pystator.fleet.producer import EventSpec, Limits
from pystator.fleet.runtime import Runtime, set_default_runtime
from pystator.fsm_core.errors import InvalidEventError
from pystator.stores.sql import submit_queries
from pystator.stores.sql.connections import dispose
from pystator.stores.sql.rows import NewEvent
from pystator.stores.sql.schema import worker_events
from pystator.worker import enqueue, submit_event, submit_event_sync, submit_events
from tests.support.worker import MACHINE, Hooks, Rig, make_rig, make_runtime

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
def runtime(db_url: str) -> Iterator[Runtime]:
    runtime = make_runtime(db_url, Hooks())
    set_default_runtime(runtime, db_url)
    yield runtime
    set_default_runtime(None, db_url)
    runtime.close()


def test_duplicate_idempotency_key_returns_the_first_id_and_is_counted(rig: Rig) -> None:
    spec = EventSpec(machine=MACHINE, entity_id="a", trigger="open", idempotency_key="k-1")
    first = rig.producer.submit(spec)
    second = rig.producer.submit(spec)
    third = rig.producer.submit_many([spec, spec])

    assert not first.duplicate
    assert second.event_id == first.event_id and second.duplicate
    assert [r.event_id for r in third] == [first.event_id] * 2
    assert all(r.duplicate for r in third)
    (event,) = rig.events()
    assert event.duplicate_count == 3


def test_the_same_key_on_another_machine_is_not_a_duplicate(rig: Rig) -> None:
    now = rig.clock()
    rows = [
        NewEvent(machine=machine, entity_id="a", trigger="open", fires_at=now, idempotency_key="k")
        for machine in (MACHINE, "other")
    ]
    with rig.engine.begin() as conn:
        results = submit_queries.insert_events(conn, rows, now)
    assert results[0].id != results[1].id
    assert [r.duplicate for r in results] == [False, False]


def test_batch_submit_keeps_order_and_marks_repeats_within_the_batch(rig: Rig) -> None:
    specs = [
        EventSpec(machine=MACHINE, entity_id=f"e{i % 7}", trigger="open", context={"i": i})
        for i in range(50)
    ]
    specs.insert(10, EventSpec(machine=MACHINE, entity_id="x", trigger="open", idempotency_key="d"))
    specs.append(EventSpec(machine=MACHINE, entity_id="x", trigger="open", idempotency_key="d"))
    receipts = rig.producer.submit_many(specs)

    ids = [r.event_id for r in receipts]
    assert ids[-1] == ids[10] and receipts[-1].duplicate
    assert ids[:-1] == sorted(ids[:-1])  # ids follow submission order
    stored = {e.id: e for e in rig.events()}
    assert len(stored) == 51
    assert [stored[i].context.get("i") for i in ids[:10]] == list(range(10))


def test_enqueue_in_a_connection_exists_only_if_the_transaction_commits(rig: Rig) -> None:
    spec = EventSpec(machine=MACHINE, entity_id="a", trigger="open")
    with rig.engine.connect() as conn:
        trans = conn.begin()
        rig.producer.enqueue(conn, spec)
        trans.rollback()
    assert rig.events() == []

    with rig.engine.begin() as conn:
        event_id = rig.producer.enqueue(conn, spec).event_id
    assert [e.id for e in rig.events()] == [event_id]


def test_enqueue_in_a_session_exists_only_if_the_session_commits(rig: Rig) -> None:
    spec = EventSpec(machine=MACHINE, entity_id="a", trigger="open")
    with Session(rig.engine) as session:
        rig.producer.enqueue(session, spec)
        session.rollback()
    assert rig.events() == []
    with Session(rig.engine) as session:
        event_id = rig.producer.enqueue(session, spec).event_id
        session.commit()
    assert [e.id for e in rig.events()] == [event_id]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"machine": "nope"}, "unknown machine 'nope'"),
        ({"trigger": "fly"}, "has no trigger 'fly'"),
        ({"entity_id": ""}, "entity_id: must be a non-empty string"),
        ({"entity_id": "x" * 300}, "the limit is 255"),
        ({"context": {"when": datetime.now(UTC)}}, "datetime is not a JSON value"),
        ({"context": {"blob": "y" * 2000}}, "the limit is 1000"),
        ({"context": ["not", "a", "mapping"]}, "must be a mapping"),
        ({"max_attempts": 0}, "max_attempts: must be from 1 to 100"),
        ({"idempotency_key": ""}, "idempotency_key: must be a non-empty string"),
    ],
)
def test_bad_input_is_refused_at_the_door(
    rig: Rig, change: dict[str, object], message: str
) -> None:
    rig.producer.limits = Limits(max_context_bytes=1000)
    fields: dict[str, object] = {"machine": MACHINE, "entity_id": "a", "trigger": "open"}
    fields.update(change)
    with pytest.raises(InvalidEventError, match=message):
        rig.producer.submit(EventSpec(**fields))  # type: ignore[arg-type]
    with pytest.raises(InvalidEventError):  # one bad item refuses the whole batch
        rig.producer.submit_many(
            [EventSpec(machine=MACHINE, entity_id="ok", trigger="open"), fields]
        )
    assert rig.events() == []


def test_future_fires_at_is_not_applied_early(rig: Rig) -> None:
    later = rig.clock() + timedelta(minutes=5)
    rig.producer.submit(EventSpec(machine=MACHINE, entity_id="a", trigger="open", fires_at=later))
    assert rig.processor.drain() == 0
    rig.clock.advance(301)
    assert rig.processor.drain() == 1


def test_module_functions_use_the_default_runtime(db_url: str, runtime: Runtime) -> None:
    first = submit_event_sync(MACHINE, "a", "open", {"x": 1}, db_url=db_url, idempotency_key="k")
    again = asyncio.run(
        submit_event(MACHINE, "a", "open", {"x": 1}, db_url=db_url, idempotency_key="k")
    )
    batch = submit_events(
        [{"machine_name": MACHINE, "entity_id": "b", "trigger": "open"}], db_url=db_url
    )
    with runtime.engine.begin() as conn:
        inside = enqueue(conn, MACHINE, "c", "open", db_url=db_url)
    assert again == first and again.duplicate and not first.duplicate
    assert len({first, batch[0], inside}) == 3
    with runtime.engine.connect() as conn:
        count = conn.execute(sa.select(sa.func.count()).select_from(worker_events)).scalar()
    assert count == 3
    assert runtime.processor.drain() == 3
