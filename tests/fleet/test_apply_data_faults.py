"""Apply-data under worker SIGKILLs: per-entity order with named events interleaved, exactly once.

Producer threads (one per share of the entities, so one entity's submission order is its
producer's call order, which is id order) submit a mix of named events and apply-data updates
to real ``pystator worker`` processes while a fault loop SIGKILLs a random worker every few
seconds and restarts it. Afterwards, from the tables:

* every accepted event is finished (completed or rejected), none lost, none left pending;
* no event wrote twice, and every entity's version equals its history length;
* each entity's history is in submission order;
* every entity's state, version and context equal a sequential replay of its accepted events
  through the pure step. The context carries the ``seq`` of the last update merged into it, so
  an apply-data applied out of order, twice, or not at all shows.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from pystator import StateMachine
from pystator.fsm_core.apply_data import APPLY_DATA_TRIGGER
from pystator.fsm_core.records import EntityRecord, EventInput, EventKind, Outcome
from pystator.fsm_core.step import apply_event
from pystator.worker import submit_apply_data_sync, submit_event_sync
from tests.support.fleet_database import create_schema, status_counts
from tests.support.fleet_processes import RedisServer, WorkerFleet, producer_runtime
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MACHINES = Path(__file__).resolve().parents[1] / "fixtures" / "apply_data"
MACHINE = "meter"
ENTITIES = 60
EVENTS_PER_ENTITY = 25
DATA_SHARE = 0.6
PRODUCERS = 3
WORKERS = 3
CONCURRENCY = 2
SUBMIT_SECONDS = 20.0
KILL_INTERVAL_SECONDS = (1.5, 3.0)
DRAIN_TIMEOUT_SECONDS = 180.0
NAMED = ("up", "down", "service", "back", "jump")


@dataclass(frozen=True)
class Planned:
    """One submission: a named event (``trigger``) or an apply-data (``trigger`` None)."""

    entity_id: str
    trigger: str | None
    payload: dict[str, Any]
    key: str


@dataclass
class Accepted:
    """What producers were told (event id → submission), shared by their threads."""

    events: dict[int, Planned] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


def plan(seed: int) -> list[Planned]:
    """Each entity: ``start`` (creates it), then a random mix; ``seq`` numbers its updates."""
    rng = random.Random(seed)
    out: list[Planned] = []
    for n in range(ENTITIES):
        entity = f"m{n}"
        out.append(Planned(entity, "start", {"seq": 0}, f"{entity}-0"))
        for seq in range(1, EVENTS_PER_ENTITY):
            key = f"{entity}-{seq}"
            if rng.random() < DATA_SHARE:
                data: dict[str, Any] = {"seq": seq, "level": rng.randrange(100)}
                if rng.random() < 0.3:
                    data["boost"] = rng.random() < 0.5
                out.append(Planned(entity, None, data, key))
            else:
                out.append(Planned(entity, rng.choice(NAMED), {"seq": seq}, key))
    return out


def submit(url: str, planned: Planned, accepted: Accepted) -> None:
    if planned.trigger is None:
        event_id = submit_apply_data_sync(
            MACHINE, planned.entity_id, planned.payload, idempotency_key=planned.key, db_url=url
        )
    else:
        event_id = submit_event_sync(
            MACHINE,
            planned.entity_id,
            planned.trigger,
            planned.payload,
            idempotency_key=planned.key,
            db_url=url,
        )
    with accepted.lock:
        assert int(event_id) not in accepted.events, "an id returned twice"
        accepted.events[int(event_id)] = planned


def produce(url: str, share: Sequence[Planned], accepted: Accepted) -> None:
    """Submit ``share`` in order, paced evenly over the submit window."""
    start = time.monotonic()
    for n, planned in enumerate(share):
        delay = start + SUBMIT_SECONDS * n / max(len(share), 1) - time.monotonic()
        if delay > 0:
            time.sleep(delay)  # pacing the workload, not waiting for a result
        submit(url, planned, accepted)


def replay(accepted: dict[int, Planned]) -> dict[str, EntityRecord]:
    """Every entity after its accepted events, one by one in id order, through the pure step."""
    machine = StateMachine.from_yaml(MACHINES / "meter.yaml")
    now = datetime(2026, 12, 7, tzinfo=UTC)
    records: dict[str, EntityRecord] = {}
    for event_id in sorted(accepted):
        planned = accepted[event_id]
        if planned.trigger is None:
            event = EventInput(
                trigger=APPLY_DATA_TRIGGER, context=planned.payload, kind=EventKind.APPLY_DATA
            )
        else:
            event = EventInput(trigger=planned.trigger, context=planned.payload)
        record = records.get(planned.entity_id)
        outcome = apply_event(machine, record, event, now, entity_id=planned.entity_id)
        if outcome.status is Outcome.APPLIED and outcome.record is not None:
            records[planned.entity_id] = outcome.record
    return records


def drained(engine: sa.Engine) -> bool:
    with engine.connect() as conn:
        pending = conn.execute(
            sa.text("SELECT count(*) FROM worker_events WHERE status = 'pending'")
        ).scalar_one()
    return int(pending) == 0


@pytest.fixture
def engine(pg_url: str) -> Iterator[sa.Engine]:
    create_schema(pg_url)
    engine = sa.create_engine(pg_url)
    yield engine
    engine.dispose()


@pytest.fixture
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with RedisServer(log_path=tmp_path_factory.mktemp("broker") / "redis.log") as server:
        yield server


def test_apply_data_keeps_order_and_applies_once_under_worker_kills(
    pg_url: str, engine: sa.Engine, broker: RedisServer, tmp_path: Path
) -> None:
    rng = random.Random(27)
    planned = plan(seed=27)
    shares: list[list[Planned]] = [[] for _ in range(PRODUCERS)]
    for p in planned:
        shares[int(p.entity_id[1:]) % PRODUCERS].append(p)
    accepted = Accepted()
    with (
        producer_runtime(pg_url, broker.url, machines=MACHINES),
        WorkerFleet(
            database_url=pg_url,
            broker_url=broker.url,
            log_dir=tmp_path,
            concurrency=CONCURRENCY,
            machines=MACHINES,
            app=None,
        ) as fleet,
    ):
        fleet.start_all(WORKERS)
        threads = [
            threading.Thread(target=produce, args=(pg_url, share, accepted), daemon=True)
            for share in shares
        ]
        for t in threads:
            t.start()
        while any(t.is_alive() for t in threads):
            time.sleep(rng.uniform(*KILL_INTERVAL_SECONDS))  # the fault schedule
            fleet.kill_and_restart(rng)
        for t in threads:
            t.join()
        try:
            wait_until(lambda: drained(engine), timeout=DRAIN_TIMEOUT_SECONDS, message="drained")
        except TimeoutError as exc:
            raise AssertionError(f"{exc}; {status_counts(engine)}\n{fleet.log_tail()}") from exc
        assert fleet.exited() == {}, f"workers died on their own\n{fleet.log_tail()}"
        fleet.stop_all()
    assert fleet.kills >= 3
    assert len(accepted.events) == len(planned)

    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT id, kind, status, trigger FROM worker_events WHERE machine = :m"),
            {"m": MACHINE},
        ).all()
        history = conn.execute(
            sa.text(
                "SELECT entity_id, version, event_id, trigger FROM transition_history "
                "WHERE machine = :m ORDER BY entity_id, version"
            ),
            {"m": MACHINE},
        ).all()
        states = conn.execute(
            sa.text(
                "SELECT entity_id, state, version, context FROM entity_states WHERE machine = :m"
            ),
            {"m": MACHINE},
        ).all()

    # none lost, none pending, the kinds as submitted
    by_id = {int(r.id): r for r in rows}
    assert set(by_id) == set(accepted.events)
    assert {r.status for r in rows} <= {"completed", "rejected"}
    kinds = {
        i: ("apply_data" if p.trigger is None else "event") for i, p in accepted.events.items()
    }
    assert {i: r.kind for i, r in by_id.items()} == kinds
    assert all(by_id[i].status == "completed" for i, k in kinds.items() if k == "apply_data")

    # once each, in submission order, versions = history length
    event_ids = [int(h.event_id) for h in history]
    assert len(event_ids) == len(set(event_ids)), "an event wrote twice"
    last: dict[str, int] = {}
    for h in history:
        assert last.get(h.entity_id, 0) < int(h.event_id), f"out of order: {h}"
        last[h.entity_id] = int(h.event_id)
    expected = replay(accepted.events)
    actual = {s.entity_id: (s.state, int(s.version), dict(s.context)) for s in states}
    want = {e: (r.state, r.version, dict(r.context)) for e, r in expected.items()}
    assert actual == want
    routed = [h for h in history if kinds[int(h.event_id)] == "apply_data"]
    moved = sum(1 for h in routed if h.trigger != APPLY_DATA_TRIGGER)
    print(f"kills={fleet.kills} events={len(rows)} apply_data={len(routed)} moved={moved}")
    assert moved > 0 and moved < len(routed)  # some updates moved the entity, some only merged
