"""Every documented way of starting a worker runs the same duties, and a short-lived producer's
nudge is sent before it exits.

- ``celery -A pystator.fleet.app worker`` (Celery's own start) fires ``after:`` timers and
  recovers an event whose nudge was never sent (its relay runs as a bootstep of the app);
- ``pystator submit`` from a shell is applied by its nudge, long before the relay could find it.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from pystator import StateMachine
from pystator.fleet.producer import EventSpec, Producer
from pystator.registry.machines import load_registry
from pystator.stores.sql import entity_queries
from pystator.stores.sql.connections import dispose, fleet_engine
from tests.support import worker_processes as procs

pytestmark = pytest.mark.integration


@pytest.fixture
def engine(pg_migrated_url: str) -> Iterator[sa.Engine]:
    engine = fleet_engine(pg_migrated_url)
    yield engine
    dispose(engine)


def state(engine: sa.Engine, machine: str, entity: str) -> str | None:
    with engine.connect() as conn:
        record = entity_queries.load_record(conn, machine, entity)
    return None if record is None else record.state


def celery_worker(settings: dict[str, str], queue: str, log: Path) -> subprocess.Popen[bytes]:
    celery = Path(sys.executable).with_name("celery")
    args = [str(celery), "-A", "pystator.worker.app", "worker", "--concurrency", "2"]
    args += ["--pool", "threads", "-Q", queue, "--without-gossip", "--without-mingle"]
    with log.open("wb") as out:
        return subprocess.Popen(
            args,
            cwd=procs.ROOT,
            env=procs.env_for(settings, clean=True),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def test_the_celery_native_start_fires_timers_and_recovers_lost_nudges(
    pg_migrated_url: str, redis_url: str, unique_name: str, tmp_path: Path, engine: sa.Engine
) -> None:
    queue = f"pystator-{unique_name}"
    settings = {
        "PYSTATOR_DATABASE_URL": pg_migrated_url,
        "PYSTATOR_BROKER_URL": redis_url,
        "PYSTATOR_QUEUE": queue,
        "PYSTATOR_MACHINES": str(procs.MACHINES),
        "PYSTATOR_APP": procs.APP,
        "PYSTATOR_RELAY_INTERVAL_SECONDS": "0.2",
        "PYSTATOR_LOG_FORMAT": "json",
    }
    worker = celery_worker(settings, queue, tmp_path / "celery.log")
    try:
        done = procs.run(["submit", "wtimer", "t1", "start"], settings)
        assert done.returncode == 0, done.stderr
        procs.wait_for(lambda: state(engine, "wtimer", "t1") == "expired", "the after: timer")

        # An event stored with no nudge at all (the producer died before sending it):
        machines = load_registry(procs.MACHINES)
        Producer(engine=engine, machines=machines).submit(
            EventSpec(machine="wtest", entity_id="lost", trigger="open")
        )
        procs.wait_for(lambda: state(engine, "wtest", "lost") == "open", "the relay")
        assert procs.stop(worker) == 0
    finally:
        procs.kill(worker)
    log = (tmp_path / "celery.log").read_text()
    assert "relay_nudged" in log  # it was the relay, a duty of the Celery-started worker


def test_pystator_submit_from_a_shell_is_applied_by_its_own_nudge(
    pg_migrated_url: str, redis_url: str, unique_name: str, tmp_path: Path, engine: sa.Engine
) -> None:
    settings = {
        "PYSTATOR_DATABASE_URL": pg_migrated_url,
        "PYSTATOR_BROKER_URL": redis_url,
        "PYSTATOR_QUEUE": f"pystator-{unique_name}",
        # the relay would take a minute to notice: only the nudge can be in time
        "PYSTATOR_RELAY_INTERVAL_SECONDS": "30",
    }
    args = ["worker", "--concurrency", "2", "--machines", str(procs.MACHINES), "--app", procs.APP]
    worker = procs.start(args, settings, tmp_path / "worker.log")
    try:
        procs.wait_for(lambda: procs.run(["health"], settings).returncode == 0, "the worker")
        for n in range(3):
            done = subprocess.run(
                f"{procs.pystator_cmd()[0]} submit wtest s{n} open --machines {procs.MACHINES}",
                shell=True,
                env=procs.env_for(settings, clean=True),
                capture_output=True,
                text=True,
                check=False,
            )
            assert done.returncode == 0 and "nudge_failed" not in done.stderr, done.stderr
            procs.wait_for(
                lambda n=n: state(engine, "wtest", f"s{n}") == "open",
                f"submission {n} to be applied by its nudge",
                timeout=20,  # the relay's first look would come after 60 s
            )
    finally:
        procs.kill(worker)


def test_the_machine_files_load() -> None:
    assert StateMachine.from_yaml(procs.MACHINES / "wtimer.yaml").name == "wtimer"
