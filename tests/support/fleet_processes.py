"""Real processes of the fleet tests and benchmarks: a private ``redis-server`` (so a test may
restart its broker without disturbing anyone else's), ``pystator worker`` processes that can be
SIGKILLed and restarted, and the producer side's runtime."""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.ports import free_port, port_open
from tests.support.waiting import wait_until
from tests.support.worker_processes import ROOT, pystator_cmd

FLEET_MACHINES = ROOT / "tests" / "fixtures" / "fleet"
FLEET_APP = "tests.support.fleet_app:factory"
FLEET_MACHINE_NAME = "fleet_cycle"
REDIS_START_TIMEOUT_SECONDS = 10.0
WORKER_STOP_TIMEOUT_SECONDS = 20.0


# ---------------------------------------------------------------------------- private Redis


@dataclass
class RedisServer:
    """A throwaway ``redis-server`` on a free port, no persistence: a broker a test may restart."""

    port: int = field(default_factory=free_port)
    log_path: Path | None = None
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise FileNotFoundError("redis-server is not installed")
        log = str(self.log_path) if self.log_path else ""
        args = [binary, "--port", str(self.port), "--bind", "127.0.0.1"]
        args += ["--save", "", "--appendonly", "no", "--logfile", log]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(
            lambda: port_open(self.port),
            timeout=REDIS_START_TIMEOUT_SECONDS,
            message=f"redis-server on port {self.port}",
        )

    def stop(self, *, hard: bool = False) -> None:
        """Stop the server (SIGKILL when ``hard``); queued messages are lost, as in a crash."""
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGKILL if hard else signal.SIGTERM)
        self.proc.wait(timeout=WORKER_STOP_TIMEOUT_SECONDS)
        self.proc = None

    def restart(self, *, down_seconds: float = 1.0) -> None:
        """Crash the broker, keep it down for ``down_seconds``, start it again on the same port."""
        self.stop(hard=True)
        time.sleep(down_seconds)  # the outage itself is what is being simulated
        self.start()

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop(hard=True)


# ---------------------------------------------------------------------------- worker processes


@dataclass
class WorkerFleet:
    """``pystator worker`` processes, each in its own process group so SIGKILL takes it whole."""

    database_url: str
    broker_url: str
    log_dir: Path
    concurrency: int = 4
    pool: str = "threads"
    machines: Path = FLEET_MACHINES
    app: str | None = FLEET_APP
    extra_args: Sequence[str] = ()
    extra_env: Mapping[str, str] = field(default_factory=dict)
    procs: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)
    starts: int = 0
    kills: int = 0

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            PYSTATOR_DATABASE_URL=self.database_url,
            PYSTATOR_BROKER_URL=self.broker_url,
            PYSTATOR_MACHINES=str(self.machines),
            PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")])),
            PYSTATOR_LOG_FORMAT="json",
        )
        if self.app:
            env["PYSTATOR_APP"] = self.app
        env.update(self.extra_env)
        return env

    def args(self) -> list[str]:
        args = [*pystator_cmd(), "worker", "--concurrency", str(self.concurrency)]
        args += ["--pool", self.pool, "--machines", str(self.machines)]
        if self.app:
            args += ["--app", self.app]
        return [*args, *self.extra_args]

    def start(self, slot: int) -> None:
        """Start (or restart) the worker in ``slot``."""
        self.starts += 1
        log = (self.log_dir / f"worker-{slot}-{self.starts}.log").open("wb")
        with log:
            self.procs[slot] = subprocess.Popen(
                self.args(),
                cwd=ROOT,
                env=self.env(),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def start_all(self, count: int) -> None:
        for slot in range(count):
            self.start(slot)

    def kill(self, slot: int) -> None:
        """SIGKILL the worker's whole process group (a pod or node dying mid-work)."""
        proc = self.procs.pop(slot)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=WORKER_STOP_TIMEOUT_SECONDS)
        self.kills += 1

    def kill_and_restart(self, rng: random.Random) -> int:
        """Kill a random live worker and start a fresh one in its slot; returns the slot."""
        slot = rng.choice(sorted(self.procs))
        self.kill(slot)
        self.start(slot)
        return slot

    def stop(self, slot: int) -> int | None:
        """SIGTERM (warm shutdown), then SIGKILL the group if it does not exit in time."""
        proc = self.procs.pop(slot)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            return proc.wait(timeout=WORKER_STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=WORKER_STOP_TIMEOUT_SECONDS)
            return None

    def stop_all(self) -> None:
        for slot in sorted(self.procs):
            self.stop(slot)

    def exited(self) -> dict[int, int]:
        """Slots whose process exited on its own, with the exit code."""
        return {s: p.returncode for s, p in self.procs.items() if p.poll() is not None}

    def log_tail(self, lines: int = 40) -> str:
        """The last lines of every worker log (for assertion messages)."""
        out = []
        for path in sorted(self.log_dir.glob("worker-*.log")):
            text = path.read_text(errors="replace").splitlines()[-lines:]
            out.append(f"--- {path.name}\n" + "\n".join(text))
        return "\n".join(out)

    def __enter__(self) -> WorkerFleet:
        return self

    def __exit__(self, *_exc: object) -> None:
        for slot in list(self.procs):
            self.kill(slot)


# ---------------------------------------------------------------------------- the producer side


@contextlib.contextmanager
def producer_runtime(
    database_url: str,
    broker_url: str,
    machines: Path = FLEET_MACHINES,
    *,
    queue: str | None = None,
    **overrides: Any,
) -> Iterator[Any]:
    """Make ``submit_event_sync(..., db_url=database_url)`` in this process nudge ``broker_url``.

    The environment of the test process names no broker; a runtime wired from explicit settings
    (and ``overrides`` of other settings) is installed for ``database_url`` instead (and
    forgotten on exit).
    """
    from dataclasses import replace

    from pystator.config.settings import load_settings
    from pystator.fleet.runtime import Runtime, set_default_runtime

    settings = replace(
        load_settings(),
        database_url=database_url,
        broker_url=broker_url,
        machines=str(machines),
        app=None,
        **({"queue": queue} if queue else {}),
        **overrides,
    )
    runtime = Runtime.from_settings(settings)
    set_default_runtime(runtime, db_url=database_url)
    try:
        yield runtime
    finally:
        set_default_runtime(None, db_url=database_url)
        flush = getattr(runtime.nudger, "flush", None)
        if flush is not None:
            flush()
        runtime.close()
