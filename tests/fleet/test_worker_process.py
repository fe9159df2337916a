"""A real ``pystator worker`` process on PostgreSQL with Redis and RabbitMQ brokers."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import sqlalchemy as sa

from pystator.config.settings import Settings
from pystator.fleet.celery_config import broker_warnings, new_app
from pystator.fleet.composition import make_nudger
from pystator.fleet.producer import EventSpec
from pystator.fleet.queue_mode import publish_event
from pystator.fleet.runtime import Runtime
from pystator.fsm_core.errors import InvalidEventError
from pystator.stores.sql import entity_queries
from pystator.stores.sql.schema import worker_events
from tests.support import worker_processes as procs
from tests.support.worker import MACHINE, Hooks, make_runtime

pytestmark = pytest.mark.integration


def _producer(db_url: str, broker_url: str, queue: str) -> Runtime:
    runtime = make_runtime(db_url, Hooks())
    runtime.settings = replace(runtime.settings, broker_url=broker_url, queue=queue)
    runtime.app = new_app(runtime.settings)
    runtime.nudger = make_nudger(runtime.settings, runtime.app)
    runtime.producer.nudger = runtime.nudger
    return runtime


def _pending(runtime: Runtime) -> int:
    with runtime.engine.connect() as conn:
        query = sa.select(sa.func.count()).where(worker_events.c.status == "pending")
        return int(conn.execute(query).scalar_one())


@pytest.mark.parametrize(
    ("broker", "pool"), [("redis", "threads"), ("redis", "prefork"), ("amqp", "threads")]
)
def test_worker_applies_submitted_events_and_drains_on_sigterm(
    request: pytest.FixtureRequest,
    pg_migrated_url: str,
    unique_name: str,
    tmp_path: Path,
    broker: str,
    pool: str,
) -> None:
    broker_url = str(request.getfixturevalue("redis_url" if broker == "redis" else "amqp_url"))
    queue = f"pystator-{unique_name}"
    settings = {
        "PYSTATOR_DATABASE_URL": pg_migrated_url,
        "PYSTATOR_BROKER_URL": broker_url,
        "PYSTATOR_LOG_FORMAT": "json",
    }
    args = ["worker", "--concurrency", "2", "--pool", pool, "--queue", queue]
    args += ["--machines", str(procs.MACHINES), "--app", procs.APP]
    log = tmp_path / "worker.log"
    worker = procs.start(args, settings, log)
    producer = _producer(pg_migrated_url, broker_url, queue)
    try:
        specs = [EventSpec(machine=MACHINE, entity_id=f"e{i}", trigger="open") for i in range(20)]
        specs += [
            EventSpec(machine=MACHINE, entity_id=f"e{i}", trigger="bump", context={"n": i})
            for i in range(20)
        ]
        producer.producer.submit_many(specs)
        producer.producer.submit(EventSpec(machine=MACHINE, entity_id="solo", trigger="open"))
        procs.wait_for(lambda: _pending(producer) == 0, "the worker to apply every event")
        with producer.engine.connect() as conn:
            statuses = conn.execute(sa.select(worker_events.c.status).distinct()).scalars().all()
        assert statuses == ["completed"]
        assert procs.stop(worker) == 0, log.read_text()
    finally:
        procs.kill(worker)
        producer.close()
    assert '"event":"worker_starting"' in log.read_text().replace(" ", "")


def test_settings_warnings_name_duplicate_delivery_risks() -> None:
    settings = Settings(broker_url="redis://127.0.0.1:6379/0", queue="q")
    safe = new_app(settings)
    assert broker_warnings(safe) == []
    risky = new_app(settings)
    risky.conf.broker_transport_options = {"visibility_timeout": 10}
    risky.conf.task_acks_late = False
    warnings = broker_warnings(risky)
    assert any("visibility_timeout=10" in w for w in warnings)
    assert any("task_acks_late" in w for w in warnings)
    assert Settings().queue == "pystator"


def test_queue_mode_applies_events_carried_in_messages(
    pg_migrated_url: str, redis_url: str, unique_name: str, tmp_path: Path
) -> None:
    queue = f"pystator-{unique_name}"
    settings = {"PYSTATOR_DATABASE_URL": pg_migrated_url, "PYSTATOR_BROKER_URL": redis_url}
    args = ["worker", "--source", "queue", "--concurrency", "2", "--queue", queue]
    args += ["--machines", str(procs.MACHINES), "--app", procs.APP]
    worker = procs.start(args, settings, tmp_path / "worker.log")
    runtime = _producer(pg_migrated_url, redis_url, queue)
    try:
        publish_event(runtime, MACHINE, "q1", "open", {"via": "queue"})
        with pytest.raises(InvalidEventError):
            publish_event(runtime, MACHINE, "q1", "fly")

        def opened() -> bool:
            with runtime.engine.connect() as conn:
                record = entity_queries.load_record(conn, MACHINE, "q1")
            return record is not None and record.state == "open"

        procs.wait_for(opened, "the queue-mode worker to apply the message")
        with runtime.engine.connect() as conn:
            assert conn.execute(sa.select(sa.func.count()).select_from(worker_events)).scalar() == 0
        assert procs.stop(worker) == 0
    finally:
        procs.kill(worker)
        runtime.close()
