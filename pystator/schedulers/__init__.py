"""Timer backends for delayed transitions (``after:``) and state timeouts."""

from typing import TYPE_CHECKING

from pystator._shims import lazy_loader
from pystator.schedulers.asyncio_scheduler import AsyncioScheduler
from pystator.schedulers.base import FireCallback, Scheduler

if TYPE_CHECKING:
    from pystator.schedulers.celery_scheduler import CeleryScheduler
    from pystator.schedulers.redis_scheduler import RedisScheduler


#: Backends with optional dependencies, imported on first use.
_LAZY = {
    "RedisScheduler": "pystator.schedulers.redis_scheduler",
    "CeleryScheduler": "pystator.schedulers.celery_scheduler",
}


__getattr__ = lazy_loader(__name__, _LAZY)


__all__ = ["AsyncioScheduler", "CeleryScheduler", "FireCallback", "RedisScheduler", "Scheduler"]
