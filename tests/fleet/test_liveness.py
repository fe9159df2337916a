"""``pystator health`` on real worker processes: a healthy worker passes; a worker whose drain
thread died, or whose action hangs, is reported unhealthy within the stall window."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import sqlalchemy as sa

from pystator.stores.sql import entity_queries
from pystator.stores.sql.connections import dispose, fleet_engine
from tests.support import worker_processes as procs
from tests.support.worker import MACHINE

pytestmark = pytest.mark.integration

#: Small windows so the test runs in seconds (production defaults: 60 s and 5 s).
STALL_SECONDS = "2"
FAST = {
    "PYSTATOR_STALL_SECONDS": STALL_SECONDS,
    "PYSTATOR_HEARTBEAT_SECONDS": "0.3",
    "PYSTATOR_ACTION_TIMEOUT_SECONDS": "1",
    "PYSTATOR_LOG_FORMAT": "json",
}
WORKER = ["worker", "--concurrency", "2", "--machines", str(procs.MACHINES), "--app", procs.APP]


def health(settings: dict[str, str], *flags: str) -> tuple[int, dict[str, object]]:
    done = procs.run(["health", "--json", *flags], settings)
    return done.returncode, json.loads(done.stdout or "{}")


def problems(report: dict[str, object]) -> str:
    checks = report.get("checks", [])
    assert isinstance(checks, list)
    return " | ".join(p for c in checks for p in c["problems"])


def submit(settings: dict[str, str], entity: str, trigger: str, context: str = "{}") -> None:
    args = ["submit", MACHINE, entity, trigger, "--context", context]
    done = procs.run([*args, "--machines", str(procs.MACHINES)], settings)
    assert done.returncode == 0, done.stderr


def test_a_hung_action_makes_its_worker_unhealthy(
    pg_migrated_url: str, redis_url: str, unique_name: str, tmp_path: Path
) -> None:
    settings = {
        "PYSTATOR_DATABASE_URL": pg_migrated_url,
        "PYSTATOR_BROKER_URL": redis_url,
        "PYSTATOR_QUEUE": f"pystator-{unique_name}",
        **FAST,
    }
    worker = procs.start(WORKER, settings, tmp_path / "worker.log")
    try:
        procs.wait_for(lambda: health(settings)[0] == 0, "a healthy worker")
        code, report = health(settings, "--liveness")
        assert code == 0 and problems(report) == ""

        submit(settings, "ok", "open")
        submit(settings, "stuck", "open", '{"hang": true}')
        procs.wait_for(
            lambda: health(settings, "--liveness")[0] == 1, "the hung action to be reported"
        )
        _, report = health(settings, "--liveness")
        assert "running for more than 2 s" in problems(report)
        engine = fleet_engine(pg_migrated_url)
        try:
            procs.wait_for(lambda: _state(engine, "ok") == "open", "the healthy entity")
        finally:
            dispose(engine)
    finally:
        procs.kill(worker)


def test_a_worker_whose_drain_thread_died_exits_and_is_unhealthy(
    tmp_path: Path,
) -> None:
    settings = {"PYSTATOR_DATABASE_URL": f"sqlite:///{tmp_path / 'fleet.db'}", **FAST}
    worker = procs.start(WORKER, settings, tmp_path / "worker.log")
    try:
        procs.wait_for(lambda: health(settings, "--liveness")[0] == 0, "a healthy worker")
        submit(settings, "a", "open")
        submit(settings, "a", "bump", '{"kill_thread": true}')
        status = worker.wait(timeout=procs.WAIT_SECONDS)
        assert status == 70  # EXIT_DUTY_DIED: the supervisor restarts it
        log = (tmp_path / "worker.log").read_text()
        assert '"event": "duty_died"' in log or '"event":"duty_died"' in log.replace(" ", "")
        code, report = health(settings, "--liveness")
        assert code == 1 and "no running worker" in problems(report)
    finally:
        procs.kill(worker)


def test_readiness_fails_when_the_database_or_broker_is_unreachable(tmp_path: Path) -> None:
    code, report = health(
        {"PYSTATOR_DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:1/none"}, "--readiness"
    )
    assert code == 1 and "database" in problems(report)
    settings = {
        "PYSTATOR_DATABASE_URL": f"sqlite:///{tmp_path / 'ready.db'}",
        "PYSTATOR_BROKER_URL": "redis://127.0.0.1:1/0",
    }
    procs.run(["db", "upgrade"], settings)
    code, report = health(settings, "--readiness")
    assert code == 1 and "broker" in problems(report) and "database" not in problems(report)


def _state(engine: sa.Engine, entity: str) -> str | None:
    with engine.connect() as conn:
        record = entity_queries.load_record(conn, MACHINE, entity)
    return None if record is None else record.state


def test_health_help_names_the_checks() -> None:
    done = subprocess.run(
        [*procs.pystator_cmd(), "health", "--help"], capture_output=True, text=True, check=True
    )
    assert "--liveness" in done.stdout and "--readiness" in done.stdout
