"""``pystator.scheduler``: the timer backends under the import path the README uses.

``from pystator.scheduler import AsyncioScheduler`` is the same class as
``pystator.schedulers.AsyncioScheduler``. ``RedisScheduler`` and ``CeleryScheduler`` load on
first use (they need the ``redis`` / ``worker`` extras).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pystator._shims import lazy_loader
from pystator.schedulers.asyncio_scheduler import AsyncioScheduler
from pystator.schedulers.base import FireCallback, Scheduler

if TYPE_CHECKING:
    from pystator.schedulers.celery_scheduler import CeleryScheduler
    from pystator.schedulers.redis_scheduler import RedisScheduler

__getattr__ = lazy_loader(__name__)

__all__ = ["AsyncioScheduler", "CeleryScheduler", "FireCallback", "RedisScheduler", "Scheduler"]
