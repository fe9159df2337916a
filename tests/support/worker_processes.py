"""Starting real ``pystator`` processes for the worker tests, and waiting on the database."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from tests.support.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
MACHINES = ROOT / "tests" / "fixtures" / "worker"
APP = "tests.support.worker_app:factory"
WAIT_SECONDS = 60.0
POLL_SECONDS = 0.1


def pystator_cmd() -> list[str]:
    """The ``pystator`` console script of this venv (or ``python -m pystator.cli``)."""
    script = Path(sys.executable).with_name("pystator")
    return [str(script)] if script.exists() else [sys.executable, "-m", "pystator.cli"]


def env_for(settings: Mapping[str, str], *, clean: bool = False) -> dict[str, str]:
    """The environment of a child: ours without PYSTATOR_* (when ``clean``) plus ``settings``."""
    env = {k: v for k, v in os.environ.items() if not (clean and k.startswith("PYSTATOR_"))}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")]))
    env.update(settings)
    return env


def start(
    args: Sequence[str], settings: Mapping[str, str], log: Path, *, cwd: Path = ROOT
) -> subprocess.Popen[bytes]:
    """Start ``pystator ARGS`` with its output in ``log``."""
    with log.open("wb") as out:
        return subprocess.Popen(
            [*pystator_cmd(), *args],
            cwd=cwd,
            env=env_for(settings, clean=True),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def run(
    args: Sequence[str], settings: Mapping[str, str], *, cwd: Path = ROOT
) -> subprocess.CompletedProcess[str]:
    """Run ``pystator ARGS`` to completion."""
    return subprocess.run(
        [*pystator_cmd(), *args],
        cwd=cwd,
        env=env_for(settings, clean=True),
        capture_output=True,
        text=True,
        timeout=WAIT_SECONDS,
        check=False,
    )


def wait_for(condition: Callable[[], bool], what: str, timeout: float = WAIT_SECONDS) -> None:
    """Poll ``condition`` until true; fail with ``what`` after ``timeout`` seconds."""
    wait_until(condition, timeout=timeout, interval=POLL_SECONDS, message=what)


def stop(proc: subprocess.Popen[bytes], timeout: float = WAIT_SECONDS) -> int:
    """SIGTERM the process (group leader only) and return its exit status."""
    proc.send_signal(signal.SIGTERM)
    return proc.wait(timeout=timeout)


def kill(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the whole process group if it is still running."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=WAIT_SECONDS)
