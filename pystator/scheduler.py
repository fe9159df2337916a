"""``pystator.scheduler``: the timer backends under the import path the README uses.

``from pystator.scheduler import AsyncioScheduler`` is the same class as
``pystator.schedulers.AsyncioScheduler``; this module only re-exports. ``RedisScheduler``
and ``CeleryScheduler`` load on first use (they need the ``redis`` / ``worker`` extras).
"""

from typing import TYPE_CHECKING, Any

from pystator.schedulers import lazy_backend
from pystator.schedulers.asyncio_scheduler import AsyncioScheduler
from pystator.schedulers.base import FireCallback, Scheduler

if TYPE_CHECKING:
    from pystator.schedulers.celery_scheduler import CeleryScheduler
    from pystator.schedulers.redis_scheduler import RedisScheduler


def __getattr__(name: str) -> Any:
    return lazy_backend(__name__, name)


__all__ = ["AsyncioScheduler", "CeleryScheduler", "FireCallback", "RedisScheduler", "Scheduler"]
