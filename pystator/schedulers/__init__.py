"""Timer backends for delayed transitions (``after:``) and state timeouts."""

from pystator.schedulers.base import FireCallback, Scheduler

__all__ = ["FireCallback", "Scheduler"]
