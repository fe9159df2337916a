"""Durable timers under faults, with real worker processes, real Redis and a real Celery broker.

1,000 entities enter ``waiting``, which arms an ``after: "4s"`` timer. Half of them leave
(``finish``) before it is due: 250 in the same batch as their ``start``, 250 once every timer has
been handed to the scheduler; the faults come once every finish is applied (a finish still
pending when its timer is due lets the timer fire first, legitimately: its event is then stale
behind the finish, and this test could not tell that from a timer fired twice). Every remaining timer must fire exactly once and the others never.
The run is repeated per scheduler and with faults: every worker SIGKILLed while it holds claimed
Redis timers, Redis (scheduler and broker) crashed and restarted with its data lost, every worker
SIGKILLed while it holds Celery ETA tasks. Afterwards, checked against the tables:

* 500 entities ``done`` (their timer never fired: no timer event at all), 500 ``expired``;
* exactly one timer event per expired entity, applied once (one ``expire`` history row);
* nothing armed, nothing pending.
"""

from __future__ import annotations

import os
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import kombu
import pytest
import redis
import sqlalchemy as sa

from tests.support.fleet_database import create_schema
from tests.support.fleet_processes import RedisServer, WorkerFleet, producer_runtime
from tests.support.waiting import wait_until
from tests.support.worker_processes import ROOT

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MACHINES = ROOT / "tests" / "fixtures" / "timers"
MACHINE = "ttimer"
ENTITIES = 1000
WORKERS = 2
CONCURRENCY = 4
RECOVERY_SECONDS = 3
#: The kill cases: a sweep this slow never gets to run before the timers are due plus this; a
#: timer recovered sooner came back because its worker was known dead.
KILL_RECOVERY_SECONDS = 30
SETTLE_SECONDS = 60.0


@pytest.fixture
def engine(pg_url: str) -> Iterator[sa.Engine]:
    create_schema(pg_url)
    engine = sa.create_engine(pg_url)
    yield engine
    engine.dispose()


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A Redis of this test alone (it may be crashed and restarted)."""
    with RedisServer(log_path=tmp_path / "redis.log") as server:
        yield server


def scalar(engine: sa.Engine, sql: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text(sql)).scalar_one())


def states(engine: sa.Engine) -> dict[str, int]:
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT state, count(*) FROM entity_states GROUP BY state"))
        return {str(s): int(n) for s, n in rows}


def submit_workload(runtime: object, engine: sa.Engine) -> None:
    """1,000 starts (250 followed at once by a finish), then 250 late finishes, all before due."""
    from pystator.fleet.producer import EventSpec

    def spec(n: int, trigger: str) -> EventSpec:
        return EventSpec(machine=MACHINE, entity_id=f"t{n:04d}", trigger=trigger)

    producer = runtime.producer  # type: ignore[attr-defined]
    first: list[EventSpec] = []
    for n in range(ENTITIES):
        first.append(spec(n, "start"))
        if n % 4 == 0:
            first.append(spec(n, "finish"))
    producer.submit_many(first)
    wait_until(
        lambda: states(engine).get("waiting", 0) == ENTITIES * 3 // 4,
        timeout=30,
        interval=0.02,
        message="every start applied",
    )
    producer.submit_many([spec(n, "finish") for n in range(ENTITIES) if n % 4 == 2])
    wait_until(
        lambda: states(engine).get("done", 0) == ENTITIES // 2,
        timeout=30,
        interval=0.02,
        message="every finish applied",
    )
    assert scalar(engine, "SELECT count(*) FROM worker_events WHERE origin = 'timer'") == 0, (
        "a timer fired before the finishes were applied: the machine is too slow for this test"
    )


def check_exactly_once(engine: sa.Engine) -> None:
    assert states(engine) == {"done": ENTITIES // 2, "expired": ENTITIES // 2}
    with engine.connect() as conn:
        timer_events = conn.execute(
            sa.text(
                "SELECT status, count(*) FROM worker_events WHERE origin = 'timer' GROUP BY status"
            )
        ).all()
        expired_twice = conn.execute(
            sa.text(
                "SELECT entity_id FROM transition_history WHERE trigger = 'expire' "
                "GROUP BY entity_id HAVING count(*) > 1"
            )
        ).all()
        fired_for_done = conn.execute(
            sa.text(
                "SELECT count(*) FROM worker_events e JOIN entity_states s "
                "ON s.machine = e.machine AND s.entity_id = e.entity_id "
                "WHERE e.origin = 'timer' AND s.state = 'done'"
            )
        ).scalar_one()
    assert {str(s): int(n) for s, n in timer_events} == {"completed": ENTITIES // 2}
    assert expired_twice == []
    assert fired_for_done == 0
    assert scalar(engine, "SELECT count(*) FROM worker_timers") == 0
    assert scalar(engine, "SELECT count(*) FROM worker_events WHERE status = 'pending'") == 0
    assert scalar(engine, "SELECT count(*) FROM worker_events WHERE status <> 'completed'") == 0


def max_lateness(engine: sa.Engine) -> float:
    """Seconds between a timer's due time and its firing (its event's insertion), at worst."""
    with engine.connect() as conn:
        value = conn.execute(
            sa.text(
                "SELECT max(extract(epoch FROM created_at - fires_at)) FROM worker_events "
                "WHERE origin = 'timer'"
            )
        ).scalar_one()
    return float(value)


def recovered(fleet: WorkerFleet, event: str = "timers_recovered") -> int:
    """Log lines of one recovery: the sweep (``timers_recovered``: a hand-off was lost) or
    ``timers_recovered_after_worker_death`` (the worker holding them was found dead)."""
    pattern = re.compile(rf'"event":\s*"{event}"')
    return sum(
        len(pattern.findall(path.read_text(errors="replace")))
        for path in fleet.log_dir.glob("worker-*.log")
    )


def settle(engine: sa.Engine, fleet: WorkerFleet) -> None:
    """Wait until every remaining timer fired and nothing can fire any more: no timer row left
    (a timer only becomes an event by deleting its row, so none can come after) and no event
    pending (a duplicated or wrongly armed timer's event has been applied, and shows)."""

    def finished() -> bool:
        return (
            states(engine).get("expired", 0) == ENTITIES // 2
            and scalar(engine, "SELECT count(*) FROM worker_timers") == 0
            and scalar(engine, "SELECT count(*) FROM worker_events WHERE status = 'pending'") == 0
        )

    try:
        wait_until(finished, timeout=SETTLE_SECONDS, message="every remaining timer fired")
    except TimeoutError as exc:
        raise AssertionError(f"{exc}; states={states(engine)}\n{fleet.log_tail()}") from exc


def eta_tasks_held(engine: sa.Engine, broker_url: str, queue: str) -> bool:
    """Every armed timer handed to Celery and none of its ETA messages left waiting in the
    queue: the workers hold them (Redis: in its ``unacked`` hash), unacknowledged."""
    handed = scalar(engine, "SELECT count(*) FROM worker_timers WHERE handed_at IS NOT NULL")
    if handed < ENTITIES // 2:
        return False
    if broker_url.startswith("redis"):
        client = redis.Redis.from_url(broker_url)
        try:
            return client.llen(queue) == 0 and client.hlen("unacked") > 0
        finally:
            client.close()
    with kombu.Connection(broker_url) as conn:
        return conn.default_channel.queue_declare(queue, passive=True).message_count == 0


def fleet_for(
    pg_url: str,
    broker_url: str,
    tmp_path: Path,
    scheduler: str,
    redis_url: str | None = None,
    recovery: float = RECOVERY_SECONDS,
) -> WorkerFleet:
    env = {
        "PYSTATOR_SCHEDULER": scheduler,
        "PYSTATOR_TIMER_RECOVERY_SECONDS": str(recovery),
        "PYSTATOR_LOG_FORMAT": "json",
    }
    if redis_url:
        env["PYSTATOR_REDIS_URL"] = redis_url
    return WorkerFleet(
        database_url=pg_url,
        broker_url=broker_url,
        log_dir=tmp_path,
        concurrency=CONCURRENCY,
        machines=MACHINES,
        app=None,
        extra_env=env,
    )


def wait_for_workers(engine: sa.Engine, fleet: WorkerFleet, runtime: object) -> None:
    """Workers are up once a probe event is applied."""
    from pystator.fleet.producer import EventSpec

    runtime.producer.submit(  # type: ignore[attr-defined]
        EventSpec(machine=MACHINE, entity_id="probe", trigger="start")
    )
    try:
        wait_until(
            lambda: states(engine).get("waiting", 0) == 1, timeout=60, message="workers ready"
        )
    except TimeoutError as exc:
        raise AssertionError(f"{exc}\n{fleet.log_tail()}") from exc
    runtime.producer.submit(  # type: ignore[attr-defined]
        EventSpec(machine=MACHINE, entity_id="probe", trigger="finish")
    )
    wait_until(lambda: states(engine).get("waiting", 0) == 0, timeout=30, message="probe done")
    with engine.begin() as conn:  # the probe is not part of the counts
        for table in ("entity_states", "worker_events", "transition_history"):
            conn.execute(sa.text(f"DELETE FROM {table}"))


def freeze_holding_claims(fleet: WorkerFleet, client: redis.Redis, claimed_key: str) -> int:
    """SIGSTOP every worker at a moment Redis shows claimed timers; returns how many are held.

    A claim is acked within milliseconds, so the workers are frozen first and the claims counted
    after: if the last one was acked just before the stop, they are resumed and we look again.
    """
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        wait_until(
            lambda: client.zcard(claimed_key) > 0,
            timeout=30,
            interval=0.0005,
            message="a worker holding claimed timers",
        )
        groups = [proc.pid for proc in fleet.procs.values()]
        for pgid in groups:
            os.killpg(pgid, signal.SIGSTOP)
        held = int(client.zcard(claimed_key))
        if held:
            return held
        for pgid in groups:
            os.killpg(pgid, signal.SIGCONT)
    raise AssertionError("never caught a worker holding claimed timers")


@pytest.mark.parametrize("fault", ["none", "kill_while_claiming", "redis_restart"])
def test_redis_timers_fire_exactly_once(
    pg_url: str, engine: sa.Engine, private_redis: RedisServer, tmp_path: Path, fault: str
) -> None:
    url = private_redis.url
    claimed_key = "pystator:pystator:timers:claimed"
    recovery = KILL_RECOVERY_SECONDS if fault == "kill_while_claiming" else RECOVERY_SECONDS
    with (
        producer_runtime(pg_url, url, machines=MACHINES) as runtime,
        fleet_for(pg_url, url, tmp_path, "redis", redis_url=url, recovery=recovery) as fleet,
    ):
        fleet.start_all(WORKERS)
        wait_for_workers(engine, fleet, runtime)
        submit_workload(runtime, engine)
        if fault == "kill_while_claiming":
            client = redis.Redis.from_url(url)
            held = freeze_holding_claims(fleet, client, claimed_key)
            for slot in sorted(fleet.procs):
                fleet.kill(slot)  # frozen with claims in hand: they die holding them
            assert held > 0 and client.zcard(claimed_key) == held
            client.close()
            fleet.start_all(WORKERS)
        elif fault == "redis_restart":
            private_redis.restart(down_seconds=1.0)  # loses every timer it held
        settle(engine, fleet)
        assert not fleet.exited(), fleet.log_tail()
        if fault == "none":  # Redis fired them all, on time; the sweep had nothing to do
            assert recovered(fleet) == 0
            assert max_lateness(engine) < RECOVERY_SECONDS / 2
        if fault == "redis_restart":  # the restart lost the timers; the table still had them
            assert recovered(fleet) > 0
        if fault == "kill_while_claiming":  # back before the sweep could have run
            assert recovered(fleet, "timers_recovered_after_worker_death") > 0
            assert recovered(fleet) == 0
            assert max_lateness(engine) < KILL_RECOVERY_SECONDS
    check_exactly_once(engine)


@pytest.mark.parametrize(
    ("broker", "fault"),
    [("amqp", "none"), ("amqp", "kill_holding_eta_tasks"), ("redis", "kill_holding_eta_tasks")],
)
def test_celery_eta_timers_fire_exactly_once(
    pg_url: str,
    engine: sa.Engine,
    request: pytest.FixtureRequest,
    unique_name: str,
    tmp_path: Path,
    broker: str,
    fault: str,
) -> None:
    # RabbitMQ hands a killed consumer's messages to another at once; Redis only after its
    # visibility timeout (an hour): there the ETA tasks die with their worker.
    broker_url = (
        str(request.getfixturevalue("amqp_url"))
        if broker == "amqp"
        else request.getfixturevalue("private_redis").url
    )
    recovery = KILL_RECOVERY_SECONDS if fault == "kill_holding_eta_tasks" else RECOVERY_SECONDS
    fleet = fleet_for(pg_url, broker_url, tmp_path, "celery", recovery=recovery)
    fleet.extra_env = {**fleet.extra_env, "PYSTATOR_QUEUE": unique_name}
    with (
        producer_runtime(pg_url, broker_url, machines=MACHINES, queue=unique_name) as runtime,
        fleet,
    ):
        fleet.start_all(WORKERS)
        wait_for_workers(engine, fleet, runtime)
        submit_workload(runtime, engine)
        if fault == "kill_holding_eta_tasks":
            wait_until(
                lambda: eta_tasks_held(engine, broker_url, unique_name),
                timeout=SETTLE_SECONDS,
                message="the ETA tasks held by the workers",
            )
            for slot in sorted(fleet.procs):
                fleet.kill(slot)
            fleet.start_all(WORKERS)
        settle(engine, fleet)
        assert not fleet.exited(), fleet.log_tail()
        if fault == "none":  # the ETA tasks fired them all, on time
            assert recovered(fleet) == 0
            assert max_lateness(engine) < RECOVERY_SECONDS / 2
        else:  # the killed workers' ETA tasks came back before the sweep could have run
            assert recovered(fleet) == 0
            assert max_lateness(engine) < KILL_RECOVERY_SECONDS
        if broker == "redis" and fault != "none":  # only their death could bring them back
            assert recovered(fleet, "timers_recovered_after_worker_death") > 0
    check_exactly_once(engine)


def test_table_timers_fire_exactly_once(
    pg_url: str, engine: sa.Engine, private_redis: RedisServer, tmp_path: Path
) -> None:
    with (
        producer_runtime(pg_url, private_redis.url, machines=MACHINES) as runtime,
        fleet_for(pg_url, private_redis.url, tmp_path, "db") as fleet,
    ):
        fleet.start_all(WORKERS)
        wait_for_workers(engine, fleet, runtime)
        submit_workload(runtime, engine)
        settle(engine, fleet)
        assert not fleet.exited(), fleet.log_tail()
        assert max_lateness(engine) < RECOVERY_SECONDS / 2
    check_exactly_once(engine)
