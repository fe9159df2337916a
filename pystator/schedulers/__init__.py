"""Timer backends for delayed transitions (``after:``) and state timeouts."""

import importlib
from typing import TYPE_CHECKING, Any

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


def lazy_backend(module: str, name: str) -> Any:
    """The lazily imported backend ``name``, as seen from ``module`` (for its AttributeError)."""
    path = _LAZY.get(name)
    if path is None:
        raise AttributeError(f"module {module!r} has no attribute {name!r}")
    return getattr(importlib.import_module(path), name)


def __getattr__(name: str) -> Any:
    return lazy_backend(__name__, name)


__all__ = ["AsyncioScheduler", "CeleryScheduler", "FireCallback", "RedisScheduler", "Scheduler"]
