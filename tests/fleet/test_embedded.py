"""Embedded mode: no settings at all — a SQLite file in the working directory, no broker."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import httpx
import pytest

from tests.support import worker_processes as procs
from tests.support.ports import free_port, port_open
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration


def test_worker_and_submit_in_two_processes_with_no_settings(tmp_path: Path) -> None:
    machines = ["--machines", str(procs.MACHINES), "--app", procs.APP]
    log = tmp_path / "worker.log"
    worker = procs.start(["worker", "--concurrency", "2", *machines], {}, log, cwd=tmp_path)
    try:
        procs.wait_for(lambda: "worker_ready" in log.read_text(), "the embedded worker to start")
        assert (tmp_path / "pystator.db").exists()  # created and migrated by the worker
        for trigger in ("open", "bump", "close"):
            done = procs.run(["submit", "wtest", "e1", trigger, *machines], {}, cwd=tmp_path)
            assert done.returncode == 0, done.stderr
            assert done.stdout.strip().isdigit()

        def closed() -> bool:
            shown = procs.run(["entities", "show", "wtest", "e1"], {}, cwd=tmp_path)
            return shown.returncode == 0 and json.loads(shown.stdout)["state"] == "closed"

        procs.wait_for(closed, "the embedded worker to apply the events")
        poison = ["submit", "wtest", "e2", "open", "--context", '{"poison": 1}', *machines]
        assert procs.run(poison, {}, cwd=tmp_path).returncode == 0
        bad = ["submit", "wtest", "e2", "bump", "--context", '{"poison": 1}', *machines]
        event_id = int(procs.run(bad, {}, cwd=tmp_path).stdout)
        procs.wait_for(lambda: "event_failed" in log.read_text(), "a logged failed attempt")
        assert procs.stop(worker) == 0, log.read_text()
    finally:
        procs.kill(worker)
    text = log.read_text()
    assert "worker_draining" in text and "worker_stopped" in text
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    (failed, *_) = [line for line in lines if line["event"] == "event_failed"]
    assert failed["event_id"] == event_id
    assert (failed["machine"], failed["entity_id"], failed["trigger"]) == ("wtest", "e2", "bump")
    assert (failed["attempt"], failed["outcome"]) == (1, "retry")


def test_submit_refuses_an_unknown_trigger_with_a_clear_message(tmp_path: Path) -> None:
    done = procs.run(
        ["submit", "wtest", "e1", "fly", "--machines", str(procs.MACHINES)], {}, cwd=tmp_path
    )
    assert done.returncode == 2
    assert "machine 'wtest' has no trigger 'fly'" in done.stderr
    assert "Traceback" not in done.stderr


def test_demo_runs_the_embedded_fleet_and_leaves_its_database(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from pystator.cli import main

    db = tmp_path / "demo.db"
    for _ in range(2):  # a second demo starts afresh in the same file
        assert main(["demo", "--entities", "20", "--threads", "2", "--db", str(db)]) == 0
        out = capsys.readouterr().out
        assert "final states  FILLED=20" in out
        assert "dead=3" in out and "pending=0" in out
    assert f"export PYSTATOR_DATABASE_URL=sqlite:///{db}" in out
    listed = procs.run(
        ["events", "list", "--status", "dead"], {"PYSTATOR_DATABASE_URL": f"sqlite:///{db}"}
    )
    assert listed.returncode == 0 and listed.stdout.count("dead") == 3


def test_the_demo_points_at_a_dashboard_that_shows_its_dead_letters(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """The command the demo prints last serves its fleet in the browser, no login on loopback."""
    from pystator.cli import main

    db = tmp_path / "demo.db"
    assert main(["demo", "--entities", "20", "--threads", "2", "--db", str(db)]) == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.strip().endswith("pystator api"))
    settings = dict(word.split("=", 1) for word in shlex.split(line)[:-2])
    assert settings["PYSTATOR_DATABASE_URL"] == f"sqlite:///{db}"
    port = free_port()
    api = procs.start(["api", "--port", str(port)], settings, tmp_path / "api.log")
    try:
        wait_until(lambda: port_open(port), timeout=30, message="the demo's dashboard to listen")
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            dead = client.get("/ui/dead")
            assert dead.status_code == 200 and "fleet_order" in dead.text
            listed = client.get("/ui/events", params={"status": "dead"})
            assert listed.status_code == 200 and listed.text.count("data-event-id=") == 3
            assert client.get("/ui/machines/fleet_order").status_code == 200
    finally:
        api.terminate()
        api.wait(timeout=30)
