"""A real ``pystator api`` (uvicorn on a loopback port) on a SQLite file, for tests that need
real HTTP: the loopback-trust rules and the definition budget."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.support import worker_processes as procs
from tests.support.ports import free_port, port_open
from tests.support.waiting import wait_until

#: How long a request may take before the test fails (generous: the machine is shared).
REQUEST_TIMEOUT_SECONDS = 30.0


@dataclass(frozen=True)
class ApiServer:
    """A running ``pystator api``: its port, process id, log file and database."""

    port: int
    pid: int
    log: Path
    database_url: str

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self) -> httpx.Client:
        """A client that keeps cookies, like a browser (close it after use)."""
        return httpx.Client(base_url=self.base, timeout=REQUEST_TIMEOUT_SECONDS)

    def request(
        self, method: str, path: str, headers: Mapping[str, str] | None = None, **kw: Any
    ) -> httpx.Response:
        """One request on a fresh connection (``headers`` may set ``Host``)."""
        with httpx.Client(base_url=self.base, timeout=REQUEST_TIMEOUT_SECONDS) as client:
            return client.request(method, path, headers=dict(headers or {}), **kw)

    def peak_rss_bytes(self) -> int:
        """The server process's peak resident memory so far (``VmHWM``)."""
        status = Path(f"/proc/{self.pid}/status").read_text()
        match = re.search(r"^VmHWM:\s+(\d+) kB$", status, re.MULTILINE)
        assert match is not None, status
        return int(match.group(1)) * 1024

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


@contextmanager
def running_api(
    tmp_path: Path, *, database_url: str | None = None, **settings: str
) -> Iterator[ApiServer]:
    """``pystator api --port …`` on ``database_url`` (default: a new SQLite file in
    ``tmp_path``; no key, no JWT key: auth is off) with ``settings`` added to its environment;
    stopped on exit."""
    database_url = database_url or f"sqlite:///{tmp_path / 'api.db'}"
    port = free_port()
    log = tmp_path / f"api-{port}.log"
    env = {"PYSTATOR_DATABASE_URL": database_url, "PYSTATOR_LOG_FORMAT": "json", **settings}
    process = procs.start(["api", "--port", str(port)], env, log)
    try:
        wait_until(
            lambda: port_open(port) or process.poll() is not None,
            timeout=60,
            message="the API to listen",
        )
        assert process.poll() is None, log.read_text()
        yield ApiServer(port=port, pid=process.pid, log=log, database_url=database_url)
    finally:
        if process.poll() is None:
            procs.stop(process)


__all__ = ["REQUEST_TIMEOUT_SECONDS", "ApiServer", "running_api"]
