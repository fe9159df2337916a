"""``celery -A pystator.worker.app worker``: the fleet's Celery app under its documented path.

The app itself is built in :mod:`pystator.fleet.app` (on first access of ``app``).
"""

from __future__ import annotations

from pystator.fleet.app import __getattr__ as __getattr__
from pystator.fleet.app import default_app, make_worker_app

__all__ = ["default_app", "make_worker_app"]
