"""Exponential backoff: the one computation behind every retry delay in pystator.

``ceiling(n) = min(max_seconds, base_seconds * multiplier ** (n - 1))`` after failed attempt ``n``
(1-based). With full jitter the delay is drawn uniformly from ``[0, ceiling(n))`` so that many
failing events, timers or actions do not come back in lock-step. The random source is injected
so tests can pin it.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

#: Returns a float in [0, 1).
RandomSource = Callable[[], float]

#: Cap on the exponent so huge attempt numbers cannot overflow the float.
MAX_EXPONENT = 62


def backoff_ceiling(
    attempt: int, *, base_seconds: float, max_seconds: float, multiplier: float = 2.0
) -> float:
    """The longest wait after failed attempt number ``attempt`` (1-based), capped."""
    exponent = min(max(attempt - 1, 0), MAX_EXPONENT)
    return float(min(max_seconds, base_seconds * multiplier**exponent))


@dataclass(frozen=True, slots=True, kw_only=True)
class Backoff:
    """How long to wait before attempt ``n + 1`` after attempt ``n`` failed."""

    base_seconds: float
    max_seconds: float
    multiplier: float = 2.0
    jitter: bool = True  # full jitter: uniform in [0, ceiling)

    def ceiling(self, attempt: int) -> float:
        """The largest delay after failed attempt ``attempt``."""
        return backoff_ceiling(
            attempt,
            base_seconds=self.base_seconds,
            max_seconds=self.max_seconds,
            multiplier=self.multiplier,
        )

    def delay(self, attempt: int, rand: RandomSource = random.random) -> float:
        """Seconds to wait after failed attempt ``attempt``."""
        ceiling = self.ceiling(attempt)
        return ceiling * rand() if self.jitter else ceiling

    def next_time(
        self, attempt: int, now: datetime, rand: RandomSource = random.random
    ) -> datetime:
        """When the next attempt is due."""
        return now + timedelta(seconds=self.delay(attempt, rand))


__all__ = ["Backoff", "RandomSource", "backoff_ceiling"]
