"""The worker's Celery app: ``celery -A pystator.worker.app worker`` (or ``pystator worker``).

:func:`make_worker_app` takes the fleet's Celery configuration
(:mod:`pystator.worker.celery_config`) and registers the tasks of :mod:`pystator.worker.tasks`,
bound to the process's runtime (:func:`~pystator.worker.runtime.get_runtime`, rebuilt in every
prefork child). The module attribute ``app`` (what ``celery -A`` looks up) is built from the
environment on first access, not at import, so importing this module never reads settings.
"""

from __future__ import annotations

import functools
from typing import Any

from celery import Celery, signals

from pystator.logging import get_logger
from pystator.settings import Settings
from pystator.worker.celery_config import broker_warnings, new_app
from pystator.worker.runtime import current_settings, get_runtime
from pystator.worker.tasks import RuntimeProvider, register

log = get_logger("pystator.worker.app")


def make_worker_app(
    settings: Settings, *, runtime: RuntimeProvider = get_runtime, source: str = "table"
) -> Celery:
    """A Celery app that runs the fleet's tasks for ``source`` (``table`` or ``queue``)."""
    celery = new_app(settings)
    register(celery, runtime, source=source)
    return celery


def _warn_on_start(sender: Any = None, **_kwargs: Any) -> None:
    app = getattr(sender, "app", None)
    if isinstance(app, Celery):
        for message in broker_warnings(app):
            log.warning("unsafe_broker_setting", detail=message)


signals.worker_ready.connect(_warn_on_start, weak=False)


@functools.cache
def default_app() -> Celery:
    """The app ``celery -A pystator.worker.app`` runs: settings from the environment."""
    return make_worker_app(current_settings())


def __getattr__(name: str) -> Celery:
    if name in ("app", "celery"):
        return default_app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["default_app", "make_worker_app"]
