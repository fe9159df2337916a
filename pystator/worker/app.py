"""``celery -A pystator.worker.app worker``: the fleet's Celery app under its documented path.

The app itself is :mod:`pystator.fleet.app`'s, built from the environment on first access of
``app`` (or ``celery``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pystator._shims import lazy_loader
from pystator.fleet.app import default_app, make_worker_app

if TYPE_CHECKING:
    from pystator.fleet.app import app, celery

__getattr__ = lazy_loader(__name__)

__all__ = ["app", "celery", "default_app", "make_worker_app"]
