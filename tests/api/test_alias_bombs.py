"""Alias bombs are refused quickly and cheaply everywhere a definition is read: ``pystator
validate``, ``pystator machines sync``, the API's publish and validate routes and the dashboard's
playground; ordinary anchors still load through each. Memory is measured on the real processes
(peak RSS against the same process on an ordinary definition); "quickly" is a generous timeout,
never a timed assertion."""

from __future__ import annotations

import os
import resource
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pystator.fsm_core.limits import MAX_DEFINITION_NODES
from tests.support import worker_processes as procs
from tests.support.api_server import ApiServer, running_api
from tests.support.waiting import wait_until
from tests.support.yaml_bombs import alias_bomb, shared_guards

pytestmark = pytest.mark.integration

#: Most extra peak memory a refusal may cost.
EXTRA_MEMORY_BYTES = 100 * 1024 * 1024
#: A command that has not finished by then failed (the refusal itself takes milliseconds).
COMMAND_TIMEOUT_SECONDS = 60.0
POLL_SECONDS = 0.05
#: Address space a command may map: far above its needs, far below what a bomb would take (a
#: regression then ends in MemoryError instead of eating the shared machine's memory).
ADDRESS_SPACE_BYTES = 2 * 1024**3
BOMBS = {"issue": alias_bomb(), "deeper": alias_bomb(30, 10, name="deeper")}
REFUSAL = f"aliases expand past {MAX_DEFINITION_NODES:,} nodes at line"
YAML = {"Content-Type": "application/yaml"}


@dataclass(frozen=True)
class Run:
    """A finished ``pystator`` command: exit status, output, its own peak RSS."""

    status: int
    output: str
    peak_rss: int


def _run(args: Sequence[str], env: dict[str, str]) -> Run:
    """Run ``pystator ARGS`` and measure that process's peak memory (``wait4``'s rusage)."""

    def limit_memory() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE_BYTES, ADDRESS_SPACE_BYTES))

    with tempfile.TemporaryFile() as out:
        process = subprocess.Popen(
            [*procs.pystator_cmd(), *args],
            cwd=procs.ROOT,
            env=procs.env_for(env, clean=True),
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=limit_memory,
        )
        reaped: list[tuple[int, Any]] = []  # wait4 reports the child's peak memory

        def exited() -> bool:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                reaped.append((status, usage))
            return bool(pid)

        try:
            wait_until(exited, timeout=COMMAND_TIMEOUT_SECONDS, interval=POLL_SECONDS)
        except TimeoutError:
            process.kill()
            process.wait()
            raise AssertionError(
                f"pystator {' '.join(args)}: no answer within the timeout"
            ) from None
        status, usage = reaped[0]
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        return Run(process.returncode, out.read().decode(errors="replace"), usage.ru_maxrss * 1024)


def _files(tmp_path: Path, **documents: str) -> Path:
    folder = tmp_path / "machines"
    folder.mkdir(parents=True)
    for name, text in documents.items():
        (folder / f"{name}.yaml").write_text(text)
    return folder


def test_validate_refuses_the_bombs(tmp_path: Path) -> None:
    folder = _files(tmp_path, shared=shared_guards(), **BOMBS)
    ordinary = _run(["validate", str(folder / "shared.yaml")], {})
    assert (ordinary.status, ordinary.output) == (
        0,
        "shared: 3 states, 2 transitions, 2 triggers, 0 timers\n",
    )
    for name in BOMBS:
        refused = _run(["validate", str(folder / f"{name}.yaml")], {})
        assert refused.status == 1, refused.output
        assert refused.output.startswith(f"{folder / name}.yaml: {REFUSAL}"), refused.output
        assert refused.peak_rss - ordinary.peak_rss < EXTRA_MEMORY_BYTES


def test_machines_sync_refuses_the_bombs_and_stores_nothing(tmp_path: Path) -> None:
    ordinary_env = {"PYSTATOR_DATABASE_URL": f"sqlite:///{tmp_path / 'ordinary.db'}"}
    ordinary = _run(
        ["machines", "sync", str(_files(tmp_path, shared=shared_guards()))], ordinary_env
    )
    assert (ordinary.status, ordinary.output) == (0, "shared: version 1 (new version)\n")
    for name, bomb in BOMBS.items():
        env = {"PYSTATOR_DATABASE_URL": f"sqlite:///{tmp_path / f'{name}.db'}"}
        folder = _files(tmp_path / name, shared=shared_guards(), bomb=bomb)
        refused = _run(["machines", "sync", str(folder)], env)
        assert refused.status == 2, refused.output
        assert f"{folder / 'bomb.yaml'}" in refused.output and REFUSAL in refused.output
        assert refused.peak_rss - ordinary.peak_rss < EXTRA_MEMORY_BYTES
        assert procs.run(["machines", "list"], env).stdout == ""  # every file checked first


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    with running_api(tmp_path_factory.mktemp("bombs")) as server:
        yield server


def test_the_api_refuses_the_bombs(api: ApiServer) -> None:
    published = api.request("POST", "/api/v1/machines", YAML, content=shared_guards())
    assert (published.status_code, published.json()["name"]) == (201, "shared")
    assert api.request("POST", "/api/v1/validate", YAML, content=shared_guards()).status_code == 200
    before = api.peak_rss_bytes()
    for bomb in BOMBS.values():
        for method, path in (
            ("POST", "/api/v1/machines"),
            ("PUT", "/api/v1/machines/b"),
            ("POST", "/api/v1/validate"),
            ("POST", "/api/v1/machines/validate"),
        ):
            refused = api.request(method, path, YAML, content=bomb)
            assert refused.status_code == 422, (path, refused.text)
            assert refused.headers["content-type"] == "application/problem+json"
            assert refused.json()["errors"][0]["message"].startswith(REFUSAL), refused.text
    assert api.peak_rss_bytes() - before < EXTRA_MEMORY_BYTES
    assert [m["name"] for m in api.request("GET", "/api/v1/machines").json()] == ["shared"]


def test_the_api_applies_the_budget_to_json_bodies_too(api: ApiServer) -> None:
    config = {"meta": {"machine_name": "wide"}, "metadata": {"items": [0] * MAX_DEFINITION_NODES}}
    refused = api.request("POST", "/api/v1/machines", json={"config": config})
    assert refused.status_code == 422
    (error,) = refused.json()["errors"]
    assert error["path"].startswith("metadata.items[")
    assert error["message"].startswith(f"the document has more than {MAX_DEFINITION_NODES:,} nodes")


def test_the_playground_refuses_the_bombs(api: ApiServer) -> None:
    with api.client() as browser:
        browser.get("/ui/machines/shared").raise_for_status()
        token = browser.cookies["pystator_csrf"]

        def play(definition: str) -> str:
            form = {"csrf_token": token, "definition": definition, "state": "", "trigger": ""}
            page = browser.post("/ui/machines/shared/playground", data=form)
            assert page.status_code == 200, page.text
            return page.text

        assert "Valid: shared — 3 states, 2 transitions." in play(shared_guards())
        before = api.peak_rss_bytes()
        for bomb in BOMBS.values():
            assert REFUSAL in play(bomb)
        assert api.peak_rss_bytes() - before < EXTRA_MEMORY_BYTES
