"""The fleet under faults: real worker processes SIGKILLed and restarted, the broker restarted.

Producers (threads of this test) submit a mix of events with duplicate idempotency keys while a
fault loop SIGKILLs a random worker every few seconds and restarts it, and crashes the private
Redis broker once mid-run. Afterwards every invariant of DESIGN.md that the run can exercise is
checked against the tables (see :func:`tests.support.fleet_invariants.check_invariants`):

* every accepted event is completed, rejected or dead (none lost, none left pending);
* no event changed state twice, and every entity's version equals its history length;
* each entity's history is in submission order;
* final states and versions equal a sequential replay of the accepted events;
* every outbox action ran at least once; duplicate runs are counted by their token.

Each entity is submitted to by one producer thread (Kafka-style per-key producers): "submission
order" of one entity is then the order its producer's calls returned, which is also id order.
"""

from __future__ import annotations

import random
import threading
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.support.fleet_database import create_action_log, create_schema, status_counts
from tests.support.fleet_invariants import check_invariants
from tests.support.fleet_processes import (
    FLEET_MACHINE_NAME,
    RedisServer,
    WorkerFleet,
    producer_runtime,
)
from tests.support.fleet_workload import PlannedEvent, plan_workload
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]

try:  # the engine and the worker fleet are being built alongside these tests
    from pystator import StateMachine  # noqa: F401
    from pystator.worker import submit_event_sync  # noqa: F401
except ImportError as exc:
    pytest.skip(f"not built yet: {exc}", allow_module_level=True)

FAULT_EVENTS = 5000
FAULT_ENTITIES = 600
FAULT_WORKERS = 3
FAULT_CONCURRENCY = 4
PRODUCERS = 4
DUPLICATE_SHARE = 0.08
SUBMIT_SECONDS = 40.0  # paced so that many kills land while events are still arriving
KILL_INTERVAL_SECONDS = (2.0, 4.0)
BROKER_DOWN_SECONDS = 2.0
DRAIN_TIMEOUT_SECONDS = 180.0
SUBMIT_RETRIES = 20
SUBMIT_RETRY_PAUSE_SECONDS = 0.25


@dataclass
class Submissions:
    """What producers were told: event ids, duplicates and submit errors, shared by threads."""

    accepted: dict[int, PlannedEvent] = field(default_factory=dict)
    duplicates: int = 0
    retried: int = 0  # submissions repeated after an error (may or may not have inserted)
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, event_id: int, planned: PlannedEvent) -> None:
        with self.lock:
            first = self.accepted.get(event_id)
            if first is None:
                self.accepted[event_id] = planned
            elif first.key == planned.key:
                self.duplicates += 1
            else:
                self.errors.append(f"id {event_id} returned for keys {first.key} and {planned.key}")


def submit_one(url: str, planned: PlannedEvent, subs: Submissions) -> None:
    """Submit, retrying with the same key if the call fails (e.g. while the broker is down)."""
    from pystator.worker import submit_event_sync

    for attempt in range(SUBMIT_RETRIES):
        try:
            event_id = submit_event_sync(
                FLEET_MACHINE_NAME,
                planned.entity_id,
                planned.trigger,
                dict(planned.context),
                idempotency_key=planned.key,
                max_attempts=planned.max_attempts,
                db_url=url,
            )
        except Exception as exc:  # recorded and retried with the same idempotency key
            with subs.lock:
                subs.retried += 1
                subs.errors.append(f"{planned.key} attempt {attempt}: {type(exc).__name__}: {exc}")
            time.sleep(SUBMIT_RETRY_PAUSE_SECONDS)
            continue
        subs.record(int(event_id), planned)
        return
    raise AssertionError(f"{planned.key} could not be submitted")


def produce(url: str, events: Sequence[PlannedEvent], subs: Submissions, seconds: float) -> None:
    """Submit ``events`` in order, paced evenly over ``seconds``."""
    start = time.monotonic()
    for n, planned in enumerate(events):
        delay = start + seconds * n / max(len(events), 1) - time.monotonic()
        if delay > 0:
            time.sleep(delay)  # pacing the workload, not waiting for a result
        submit_one(url, planned, subs)


def by_producer(plan: Sequence[PlannedEvent], producers: int) -> list[list[PlannedEvent]]:
    """Split the plan so that each entity belongs to exactly one producer, order kept."""
    shares: list[list[PlannedEvent]] = [[] for _ in range(producers)]
    for planned in plan:
        shares[int(planned.entity_id[1:]) % producers].append(planned)
    return shares


def run_producers(
    url: str, plan: Sequence[PlannedEvent], subs: Submissions, seconds: float
) -> list[threading.Thread]:
    threads = [
        threading.Thread(target=produce, args=(url, share, subs, seconds), daemon=True)
        for share in by_producer(plan, PRODUCERS)
    ]
    for t in threads:
        t.start()
    return threads


def drained(engine: sa.Engine) -> bool:
    with engine.connect() as conn:
        events = conn.execute(
            sa.text("SELECT count(*) FROM worker_events WHERE status = 'pending'")
        ).scalar_one()
        actions = conn.execute(
            sa.text("SELECT count(*) FROM action_outbox WHERE status = 'pending'")
        ).scalar_one()
    return int(events) == 0 and int(actions) == 0


@pytest.fixture
def engine(pg_url: str) -> Iterator[sa.Engine]:
    """The test database, migrated, with the ``action_log`` table the fleet app writes to."""
    create_schema(pg_url)
    engine = sa.create_engine(pg_url)
    create_action_log(engine)
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A private Redis broker (this module's alone, so the fault test may crash it)."""
    log = tmp_path_factory.mktemp("broker") / "redis.log"
    with RedisServer(log_path=log) as server:
        yield server


def test_fleet_survives_worker_kills_and_a_broker_restart(
    pg_url: str, engine: sa.Engine, broker: RedisServer, tmp_path: Path
) -> None:
    rng = random.Random(4)
    plan = plan_workload(
        events=FAULT_EVENTS, entities=FAULT_ENTITIES, duplicate_share=DUPLICATE_SHARE, seed=4
    )
    subs = Submissions()
    with (
        producer_runtime(pg_url, broker.url),
        WorkerFleet(
            database_url=pg_url,
            broker_url=broker.url,
            log_dir=tmp_path,
            concurrency=FAULT_CONCURRENCY,
            pool="threads",
        ) as fleet,
    ):
        fleet.start_all(FAULT_WORKERS)
        threads = run_producers(pg_url, plan, subs, SUBMIT_SECONDS)
        broker_restarted = False
        while any(t.is_alive() for t in threads):
            time.sleep(rng.uniform(*KILL_INTERVAL_SECONDS))  # the fault schedule
            fleet.kill_and_restart(rng)
            if not broker_restarted and len(subs.accepted) > FAULT_EVENTS // 2:
                broker.restart(down_seconds=BROKER_DOWN_SECONDS)
                broker_restarted = True
        for t in threads:
            t.join()
        for _ in range(2):  # a few kills while the backlog drains
            time.sleep(rng.uniform(*KILL_INTERVAL_SECONDS))
            fleet.kill_and_restart(rng)
        try:
            wait_until(
                lambda: drained(engine),
                timeout=DRAIN_TIMEOUT_SECONDS,
                message="no pending events or actions",
            )
        except TimeoutError as exc:
            raise AssertionError(
                f"{exc}; statuses {status_counts(engine)}\n{fleet.log_tail()}"
            ) from exc
        assert fleet.exited() == {}, f"workers died on their own\n{fleet.log_tail()}"
        fleet.stop_all()
    assert broker_restarted
    # a submission repeated after an error may or may not have been inserted the first time
    report = check_invariants(engine, subs.accepted, subs.duplicates, duplicate_slack=subs.retried)
    report.stats.update(kills=fleet.kills, submit_retries=subs.retried)
    print(report)
    assert fleet.kills >= 5
    assert not report.problems, f"{report}\nsubmit errors: {subs.errors[:5]}"


@pytest.mark.parametrize("pool", ["threads", "prefork"])
def test_one_worker_with_concurrency_is_as_safe_as_many(
    pool: str, pg_url: str, engine: sa.Engine, broker: RedisServer, tmp_path: Path
) -> None:
    """Concurrency inside one worker process is as safe as many processes."""
    plan = plan_workload(events=1000, entities=100, duplicate_share=0.05, seed=8)
    subs = Submissions()
    with (
        producer_runtime(pg_url, broker.url),
        WorkerFleet(
            database_url=pg_url, broker_url=broker.url, log_dir=tmp_path, concurrency=8, pool=pool
        ) as fleet,
    ):
        fleet.start(0)
        for t in run_producers(pg_url, plan, subs, seconds=0.0):
            t.join()
        try:
            wait_until(lambda: drained(engine), timeout=DRAIN_TIMEOUT_SECONDS, message="drained")
        except TimeoutError as exc:
            raise AssertionError(f"{exc}; {status_counts(engine)}\n{fleet.log_tail()}") from exc
        assert fleet.exited() == {}, f"workers died on their own\n{fleet.log_tail()}"
        fleet.stop_all()
    report = check_invariants(engine, subs.accepted, subs.duplicates)
    assert not report.problems, f"{report}\nsubmit errors: {subs.errors[:5]}"
    assert subs.errors == []
    statuses = report.stats["statuses"]
    assert {"completed", "rejected", "dead"} <= set(statuses), statuses


@pytest.mark.parametrize(
    ("events", "entities", "seed"), [(FAULT_EVENTS, FAULT_ENTITIES, 4), (1000, 100, 8)]
)
def test_workload_mixes_every_outcome(events: int, entities: int, seed: int) -> None:
    """The plans exercise rejections, poison events and duplicates (pure check, no services)."""
    plan = plan_workload(events=events, entities=entities, duplicate_share=0.05, seed=seed)
    kinds: dict[str, int] = defaultdict(int)
    for p in plan:
        kinds[p.trigger] += 1
        kinds["poison"] += bool(p.context.get("poison"))
    keys = [p.key for p in plan]
    assert len(keys) - len(set(keys)) > events // 50
    assert kinds["poison"] > 0 and kinds["reset"] > 0 and kinds["next"] > 0
    assert len({p.entity_id for p in plan}) == entities


# --- the checks themselves catch violations (no workers: rows written directly) ---------------

CORRUPTIONS = {
    "pending": "UPDATE worker_events SET status = 'pending' WHERE id = 3",
    "lost": "DELETE FROM worker_events WHERE id = 3",
    "order": "UPDATE transition_history SET event_id = 3 - event_id",
    "twice": "INSERT INTO transition_history (machine, entity_id, version, target_state, "
    "trigger, event_id, origin, actions, created_at) SELECT machine, entity_id, 3, 'A', trigger, "
    "event_id, origin, actions, created_at FROM transition_history WHERE version = 1",
    "replay": "UPDATE entity_states SET state = 'A'",
    "action": "DELETE FROM action_log WHERE token = '1'",
    "duplicates": "UPDATE worker_events SET duplicate_count = 2 WHERE id = 1",
}


def _seed(engine: sa.Engine) -> dict[int, PlannedEvent]:
    """One entity: next (A→B), next (B→C), reset refused; two actions, one run twice."""
    from datetime import UTC, datetime

    from pystator.stores.sql.schema import (
        action_outbox,
        entity_states,
        transition_history,
        worker_events,
    )

    now = datetime.now(UTC)
    plan = {
        1: PlannedEvent(entity_id="e1", trigger="next", context={}, key="k1", max_attempts=5),
        2: PlannedEvent(entity_id="e1", trigger="next", context={}, key="k2", max_attempts=5),
        3: PlannedEvent(
            entity_id="e1", trigger="reset", context={"allow": False}, key="k3", max_attempts=5
        ),
    }
    stamp = {"created_at": now, "updated_at": now}
    m = FLEET_MACHINE_NAME
    with engine.begin() as conn:
        conn.execute(
            worker_events.insert(),
            [
                {"id": i, "machine": m, "entity_id": p.entity_id, "trigger": p.trigger}
                | {
                    "context": dict(p.context),
                    "errors": [],
                    "fires_at": now,
                    "idempotency_key": p.key,
                }
                | {"status": "rejected" if i == 3 else "completed", "duplicate_count": int(i == 1)}
                | stamp
                for i, p in plan.items()
            ],
        )
        conn.execute(
            entity_states.insert(),
            {"machine": m, "entity_id": "e1", "state": "C", "context": {}, "version": 2}
            | {"entries": {"C": 2}}
            | stamp,
        )
        conn.execute(
            transition_history.insert(),
            [
                {"machine": m, "entity_id": "e1", "version": v, "source_state": src}
                | {"target_state": dst, "trigger": "next", "event_id": v, "origin": "event"}
                | {"actions": ["log_action"], "created_at": now}
                for v, src, dst in ((1, None, "B"), (2, "B", "C"))
            ],
        )
        conn.execute(
            action_outbox.insert(),
            [
                {"id": v, "event_id": v, "machine": m, "entity_id": "e1", "entity_version": v}
                | {"action": "log_action", "phase": "transition", "params": {}, "context": {}}
                | {"status": "done", "errors": [], "available_at": now, "created_at": now}
                for v in (1, 2)
            ],
        )
        for token in ("1", "2", "2"):
            conn.execute(
                sa.text("INSERT INTO action_log (token, entity_id, action) VALUES (:t, 'e1', 'x')"),
                {"t": token},
            )
    return plan


@pytest.mark.parametrize("corruption", [None, *CORRUPTIONS])
def test_invariant_checks_catch_violations(engine: sa.Engine, corruption: str | None) -> None:
    accepted = _seed(engine)
    if corruption is not None:
        with engine.begin() as conn:
            conn.execute(sa.text(CORRUPTIONS[corruption]))
    report = check_invariants(engine, accepted, duplicates=1)
    if corruption is None:
        assert report.problems == [], str(report)
        assert report.stats["action_duplicate_runs"] == 1
    else:
        assert report.problems, f"{corruption} went unnoticed: {report}"
