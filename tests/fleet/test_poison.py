"""Healthy traffic and every kind of poison at once, on two real worker processes.

Each poison ends refused at the door, rejected, or dead with its reason; every healthy entity
completes on its first attempt, while the poison is still being retried (nothing waits behind
it). Poisons: an entity id of 255 characters with timers, NUL and lone surrogates, a context
2,000 levels deep, an idempotency key reused for another event, a guard that raises for one
entity, a database-level write failure for one entity, an action that hangs.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from pystator import IdempotencyConflictError, InvalidEventError
from pystator.fleet.producer import EventSpec, Producer
from pystator.stores.sql.connections import dispose, fleet_engine
from pystator.stores.sql.schema import action_outbox, entity_states, worker_events
from tests.support import worker_processes as procs
from tests.support.fleet_processes import producer_runtime
from tests.support.worker import MACHINE

pytestmark = [pytest.mark.integration, pytest.mark.slow]

HEALTHY = 150
LONG_ID = "L" * 255
MAX_ATTEMPTS = 3


@pytest.fixture
def engine(pg_migrated_url: str) -> Iterator[sa.Engine]:
    engine = fleet_engine(pg_migrated_url)
    with engine.begin() as conn:  # a database-level failure for one entity's state write
        conn.execute(
            sa.text(
                "CREATE FUNCTION poisoned() RETURNS trigger AS $$ BEGIN "
                "RAISE EXCEPTION 'storage refused %', NEW.entity_id; END $$ LANGUAGE plpgsql"
            )
        )
        conn.execute(
            sa.text(
                "CREATE TRIGGER poison BEFORE INSERT OR UPDATE ON entity_states FOR EACH ROW "
                "WHEN (NEW.entity_id = 'db-poison') EXECUTE FUNCTION poisoned()"
            )
        )
    yield engine
    dispose(engine)


def spec(entity: str, trigger: str, **kw: Any) -> EventSpec:
    return EventSpec(machine=kw.pop("machine", MACHINE), entity_id=entity, trigger=trigger, **kw)


def test_poison_is_isolated_and_healthy_work_goes_on(
    pg_migrated_url: str, redis_url: str, unique_name: str, tmp_path: Path, engine: sa.Engine
) -> None:
    settings = {
        "PYSTATOR_DATABASE_URL": pg_migrated_url,
        "PYSTATOR_BROKER_URL": redis_url,
        "PYSTATOR_QUEUE": f"pystator-{unique_name}",
        "PYSTATOR_RETRY_BASE_SECONDS": "0.2",
        "PYSTATOR_RETRY_MAX_SECONDS": "0.5",
        "PYSTATOR_ACTION_TIMEOUT_SECONDS": "1",
        "PYSTATOR_RELAY_INTERVAL_SECONDS": "0.3",
        "PYSTATOR_LOG_FORMAT": "json",
    }
    args = ["worker", "--concurrency", "3", "--machines", str(procs.MACHINES), "--app", procs.APP]
    workers = [procs.start(args, settings, tmp_path / f"worker-{n}.log") for n in range(2)]
    try:
        with producer_runtime(
            pg_migrated_url, redis_url, procs.MACHINES, queue=settings["PYSTATOR_QUEUE"]
        ) as runtime:
            producer: Producer = runtime.producer
            refusals = _the_door_refuses_what_cannot_be_stored(producer)
            poisons = {
                "guard": producer.submit(spec("guard-poison", "open")),
                "guard-bump": producer.submit(
                    spec("guard-poison", "bump", context={"poison": True}, max_attempts=3)
                ),
                "db": producer.submit(spec("db-poison", "open", max_attempts=MAX_ATTEMPTS)),
                "hang": producer.submit(spec("hang-poison", "open", context={"hang": True})),
                "long": producer.submit(spec(LONG_ID, "start", machine="wtimer")),
            }
            healthy = []
            for n in range(HEALTHY):
                healthy.append(producer.submit(spec(f"h{n}", "open")))
                healthy.append(producer.submit(spec(f"h{n}", "bump", context={"n": n})))
                healthy.append(producer.submit(spec(f"h{n}", "close")))
            producer.submit(spec("keyed", "open", idempotency_key="k-1"))
            with pytest.raises(IdempotencyConflictError):
                producer.submit(spec("someone-else", "open", idempotency_key="k-1"))

            def settled() -> bool:
                # the hung action's timeout is recorded by whichever worker ran it, inline
                # after commit or, on a busy machine, by the outbox sweep after its lease
                return (
                    _pending(engine) == 0
                    and _state(engine, LONG_ID) == "expired"
                    and bool(_action_errors(engine, "hang-poison"))
                )

            procs.wait_for(settled, "every event to settle", timeout=120)
    finally:
        for worker in workers:
            procs.kill(worker)

    events = _events(engine)
    for event_id in healthy:
        event = events[event_id]
        assert (event["status"], event["attempts"], event["errors"]) == ("completed", 1, [])
    assert all(_state(engine, f"h{n}") == "closed" for n in range(HEALTHY))
    assert refusals == {"nul", "encoding", "depth", "control_character"}

    guard = events[poisons["guard-bump"]]
    assert guard["status"] == "dead" and "Poison" in guard["errors"][-1]["cause"]
    db = events[poisons["db"]]
    assert db["status"] == "dead" and len(db["errors"]) == MAX_ATTEMPTS
    assert "storage refused db-poison" in db["errors"][-1]["message"]
    # healthy work finished while the poisons were still being retried: nothing waited
    last_healthy = max(events[i]["completed_at"] for i in healthy)
    assert last_healthy < db["completed_at"]
    assert events[poisons["long"]]["status"] == "completed"  # the long id's timer fired too
    assert _state(engine, "hang-poison") == "open"  # the state change stands
    hung = _action_errors(engine, "hang-poison")
    assert "ran longer than 1 s" in hung[0]["message"]  # the action timed out; retried later


def _action_errors(engine: sa.Engine, entity_id: str) -> list[Any]:
    with engine.connect() as conn:
        errors = conn.execute(
            sa.select(action_outbox.c.errors).where(action_outbox.c.entity_id == entity_id)
        ).scalar_one_or_none()
    return list(errors or [])


def _the_door_refuses_what_cannot_be_stored(producer: Producer) -> set[str]:
    deep: dict[str, Any] = {}
    for _ in range(2000):
        deep = {"n": deep}
    rules = set()
    for bad in (
        spec("nul", "open", context={"x": "a\x00b"}),
        spec("surrogate", "open", context={"x": "\udc80"}),
        spec("deep", "open", context=deep),
        spec("ctl\x01", "open"),
    ):
        with pytest.raises(InvalidEventError) as refused:
            producer.submit(bad)
        rules.add(refused.value.details["rule"])
    return rules


def _pending(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        query = sa.select(sa.func.count()).where(worker_events.c.status == "pending")
        return int(conn.execute(query).scalar_one())


def _state(engine: sa.Engine, entity: str) -> str | None:
    with engine.connect() as conn:
        return conn.execute(
            sa.select(entity_states.c.state).where(entity_states.c.entity_id == entity)
        ).scalar_one_or_none()


def _events(engine: sa.Engine) -> dict[int, dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(worker_events)).mappings().all()
    return {int(r["id"]): dict(r) for r in rows}
