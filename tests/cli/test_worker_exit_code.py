"""``pystator worker`` in Celery mode exits with the Celery worker's own exit code: a consumer
that crashed ("Unrecoverable error", exit code 1) must not look like a clean stop to a
supervisor that restarts on failure. The worker is built as ``celery worker`` would build it
(without Celery's command line): the options it is given are checked here."""

from __future__ import annotations

import argparse
import logging
from types import SimpleNamespace
from typing import Any

import pytest
from celery import signals

from pystator.commands.worker import _run_celery


class Controller:
    """Stands in for Celery's WorkController: ``start`` returns once it stopped with
    ``exitcode`` (None when it never set one)."""

    def __init__(self, exitcode: int | None, options: dict[str, Any]) -> None:
        self.options = options
        self.planned = exitcode
        self.exitcode: int | None = None

    def start(self) -> None:
        self.exitcode = self.planned


class FakeApp:
    """Stands in for the Celery app: ``Worker(**options)`` builds a :class:`Controller`."""

    def __init__(self, exitcode: int | None) -> None:
        self.exitcode = exitcode
        self.built: list[Controller] = []

    def Worker(self, **options: Any) -> Controller:  # Celery's name
        self.built.append(Controller(self.exitcode, options))
        return self.built[-1]


@pytest.mark.parametrize(("celery_exit", "expected"), [(None, 0), (0, 0), (1, 1), (70, 70)])
def test_the_worker_exits_with_celery_s_exit_code(celery_exit: int | None, expected: int) -> None:
    args = argparse.Namespace(concurrency=2, pool="threads", log_level="info")
    runtime: Any = SimpleNamespace(queue="q", settings=SimpleNamespace(worker_drain_timeout_s=5.0))
    app = FakeApp(celery_exit)
    assert _run_celery(runtime, app, 2, args) == expected  # type: ignore[arg-type]
    [worker] = app.built
    assert worker.options["queues"] == ["q"] and worker.options["concurrency"] == 2
    assert worker.options["pool_cls"] == "threads"
    assert "%h" not in worker.options["hostname"]  # the host's name, as `celery worker -n` has it
    assert worker.options["loglevel"] == logging.WARNING  # Celery's own lines at debug only
    assert worker.options["without_gossip"] and worker.options["without_mingle"]
    assert not signals.worker_shutting_down.receivers or all(  # the hook does not outlive it
        "_escalate_on_second_signal" not in repr(r) for r in signals.worker_shutting_down.receivers
    )
