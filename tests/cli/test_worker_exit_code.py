"""``pystator worker`` in Celery mode exits with the Celery worker's own exit code: a consumer
that crashed ("Unrecoverable error", exit code 1) must not look like a clean stop to a
supervisor that restarts on failure (Celery's ``worker_main`` drops the code)."""

from __future__ import annotations

import argparse
from types import SimpleNamespace
from typing import Any

import pytest
from celery import signals

from pystator.commands.worker import _run_celery


class Controller:
    exitcode: int | None = None


class FakeApp:
    """Stands in for the Celery app: ``worker_main`` announces a worker that stopped with
    ``exitcode`` (as Celery's WorkController does) and returns nothing."""

    def __init__(self, exitcode: int | None) -> None:
        self.exitcode = exitcode
        self.argv: list[str] = []

    def worker_main(self, argv: list[str]) -> None:
        self.argv = argv
        controller = Controller()
        signals.worker_init.send(sender=controller)
        controller.exitcode = self.exitcode


@pytest.mark.parametrize(("celery_exit", "expected"), [(None, 0), (0, 0), (1, 1), (70, 70)])
def test_the_worker_exits_with_celery_s_exit_code(celery_exit: int | None, expected: int) -> None:
    args = argparse.Namespace(concurrency=2, pool="threads", log_level="info")
    runtime: Any = SimpleNamespace(queue="q", settings=SimpleNamespace(worker_drain_timeout_s=5.0))
    app = FakeApp(celery_exit)
    assert _run_celery(runtime, app, 2, args) == expected  # type: ignore[arg-type]
    assert "--queues=q" in app.argv and "--concurrency=2" in app.argv
    assert not signals.worker_init.receivers or all(  # the hooks do not outlive the run
        "remember" not in repr(r) for r in signals.worker_init.receivers
    )
    assert not signals.worker_shutting_down.receivers or all(
        "_escalate_on_second_signal" not in repr(r) for r in signals.worker_shutting_down.receivers
    )
