"""Start-up that waits for its database: workers, the relay and the API started while
PostgreSQL is unreachable stay up, log one line per attempt (no traceback), and once it answers
the workers drain everything: 0 lost, 0 applied twice.

The shared PostgreSQL cannot be stopped here, so the processes reach it through a TCP proxy
(:mod:`tests.support.tcp_proxy`) that refuses connections until the test switches it on.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from pystator.config.settings import Settings
from pystator.fleet.producer import EventSpec
from pystator.fleet.startup import STARTUP_BACKOFF, retry_at_startup, wait_for_database
from pystator.fsm_core.errors import StoreUnavailableError
from pystator.stores.sql.connections import dispose, fleet_engine
from tests.support import worker_processes as procs
from tests.support.fleet_processes import RedisServer, producer_runtime
from tests.support.ports import free_port, port_open
from tests.support.tcp_proxy import TcpProxy
from tests.support.worker import MACHINE

ENTITIES = 100
BUMPS = 4
WORKERS = 3
ATTEMPTS_SEEN = 2  # attempts each process must have logged before the database comes up


def test_waiting_retries_with_backoff_until_the_database_answers() -> None:
    failures = iter(range(3))
    slept: list[float] = []

    def connect(_url: str) -> None:
        if next(failures, None) is not None:
            raise StoreUnavailableError("database unavailable: connection refused")

    settings = Settings(database_url="postgresql+psycopg://u@127.0.0.1:1/db")
    attempts = wait_for_database(settings, process="test", connect=connect, sleep=slept.append)
    assert attempts == 4
    assert slept == [STARTUP_BACKOFF.delay(n) for n in (1, 2, 3)] == [0.5, 1.0, 2.0]


def test_waiting_gives_up_after_the_startup_timeout() -> None:
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    def refuse() -> None:
        raise StoreUnavailableError("database unavailable: connection refused")

    settings = Settings(startup_timeout_seconds=10)
    with pytest.raises(StoreUnavailableError):
        retry_at_startup(
            settings, process="test", step=refuse, sleep=sleep, monotonic=lambda: now[0]
        )
    assert 5.0 < now[0] <= 10.0  # 0.5 + 1 + 2 + 4 (the next 5 s would pass the deadline)


def test_sqlite_needs_no_wait() -> None:
    def never(_url: str) -> None:
        raise AssertionError("an embedded database is not waited for")

    assert wait_for_database(Settings(), process="test", connect=never) == 0


@pytest.mark.integration
@pytest.mark.slow
def test_processes_started_while_the_database_is_down_wait_then_drain_everything(
    pg_migrated_url: str, unique_name: str, tmp_path: Path
) -> None:
    url = sa.make_url(pg_migrated_url)
    engine = fleet_engine(pg_migrated_url)
    queue = f"pystator-{unique_name}"
    started: list[tuple[str, subprocess.Popen[bytes]]] = []
    with (
        TcpProxy(target_port=url.port or 5432, target_host=url.host or "127.0.0.1") as proxy,
        RedisServer(log_path=tmp_path / "redis.log") as broker,
    ):
        via_proxy = url.set(host="127.0.0.1", port=proxy.port).render_as_string(False)
        settings = {
            "PYSTATOR_DATABASE_URL": via_proxy,
            "PYSTATOR_BROKER_URL": broker.url,
            "PYSTATOR_QUEUE": queue,
            "PYSTATOR_STARTUP_TIMEOUT_SECONDS": "120",
            "PYSTATOR_LOG_FORMAT": "json",
        }
        with producer_runtime(pg_migrated_url, broker.url, procs.MACHINES, queue=queue) as rt:
            for n in range(BUMPS + 1):
                for e in range(ENTITIES):
                    trigger = "open" if n == 0 else "bump"
                    rt.producer.submit(
                        EventSpec(machine=MACHINE, entity_id=f"d{e}", trigger=trigger)
                    )
            assert rt.nudger.flush(10)
        api_port = free_port()
        machines = ["--machines", str(procs.MACHINES)]
        commands = {
            **{
                f"worker-{n}": ["worker", "--concurrency", "2", *machines, "--app", procs.APP]
                for n in range(WORKERS)
            },
            "relay": ["relay", *machines],
            "api": ["api", "--port", str(api_port)],
        }
        try:
            for name, args in commands.items():
                started.append((name, procs.start(args, settings, tmp_path / f"{name}.log")))
            for name, _proc in started:
                procs.wait_for(
                    lambda name=name: attempts(tmp_path / f"{name}.log") >= ATTEMPTS_SEEN,
                    f"{name} to log {ATTEMPTS_SEEN} attempts",
                )
            assert {name: p.poll() for name, p in started} == {name: None for name, _ in started}
            assert not port_open(api_port)  # not serving: readiness stays red

            proxy.start()  # the database is back
            procs.wait_for(lambda: pending(engine) == 0, "every event to be applied", 120)
            procs.wait_for(lambda: ready(api_port), "the API to answer /ready")
            for name, _proc in started:  # the relay may still sleep its backoff out (≤ 5 s)
                procs.wait_for(
                    lambda name=name: connected(tmp_path / f"{name}.log"),
                    f"{name} to log database_available",
                )
            assert {name: p.poll() for name, p in started} == {name: None for name, _ in started}
            lost, twice, wrong_versions = check(engine)
        finally:
            for _name, proc in started:
                procs.kill(proc)
    dispose(engine)
    assert (lost, twice, wrong_versions) == (0, 0, 0)
    for name, _proc in started:
        text = (tmp_path / f"{name}.log").read_text()
        assert "Traceback" not in text, f"{name}:\n{text[-3000:]}"
        assert "database_available" in text, name


def connected(log: Path) -> bool:
    return log.exists() and '"database_available"' in log.read_text(errors="replace")


def attempts(log: Path) -> int:
    return log.read_text(errors="replace").count('"database_unavailable"') if log.exists() else 0


def ready(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/ready", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def pending(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        query = sa.text("SELECT count(*) FROM worker_events WHERE status = 'pending'")
        return int(conn.execute(query).scalar_one())


def check(engine: sa.Engine) -> tuple[int, int, int]:
    """(events not completed, events applied more than once, entities whose version is off)."""
    with engine.connect() as conn:
        lost = conn.execute(
            sa.text("SELECT count(*) FROM worker_events WHERE status <> 'completed'")
        ).scalar_one()
        twice = conn.execute(
            sa.text(
                "SELECT count(*) FROM (SELECT event_id FROM transition_history "
                "GROUP BY event_id HAVING count(*) > 1) AS t"
            )
        ).scalar_one()
        wrong = conn.execute(
            sa.text("SELECT count(*) FROM entity_states WHERE version <> :v"), {"v": BUMPS + 1}
        ).scalar_one()
        entities = conn.execute(sa.text("SELECT count(*) FROM entity_states")).scalar_one()
    return int(lost), int(twice), int(wrong) + (ENTITIES - int(entities))
