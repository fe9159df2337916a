"""Retry timing: exponential backoff with full jitter, as a pure function.

``delay = uniform(0, min(max_seconds, base_seconds * 2 ** (attempt - 1)))`` — "full jitter"
spreads retries of many failing events so they do not come back in lock-step. The random source is
injected so tests can pin it.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from pystator.settings import DEFAULT_RETRY_BASE_SECONDS, DEFAULT_RETRY_MAX_SECONDS

#: Returns a float in [0, 1).
RandomSource = Callable[[], float]

#: Cap on the exponent so huge attempt numbers cannot overflow the float.
MAX_EXPONENT = 62


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """How long to wait before attempt ``n + 1`` after attempt ``n`` failed."""

    base_seconds: float = DEFAULT_RETRY_BASE_SECONDS
    max_seconds: float = DEFAULT_RETRY_MAX_SECONDS

    def ceiling(self, attempt: int) -> float:
        """The largest delay after failed attempt number ``attempt`` (1-based)."""
        exponent = min(max(attempt - 1, 0), MAX_EXPONENT)
        return float(min(self.max_seconds, self.base_seconds * (2**exponent)))

    def delay(self, attempt: int, rand: RandomSource = random.random) -> float:
        """Seconds to wait after failed attempt ``attempt``: full jitter under :meth:`ceiling`."""
        return self.ceiling(attempt) * rand()

    def next_time(
        self, attempt: int, now: datetime, rand: RandomSource = random.random
    ) -> datetime:
        """When the next attempt is due."""
        return now + timedelta(seconds=self.delay(attempt, rand))


def backoff_delay(
    attempt: int,
    *,
    base_seconds: float = DEFAULT_RETRY_BASE_SECONDS,
    max_seconds: float = DEFAULT_RETRY_MAX_SECONDS,
    rand: RandomSource = random.random,
) -> float:
    """Functional form of :meth:`RetryPolicy.delay`."""
    return RetryPolicy(base_seconds=base_seconds, max_seconds=max_seconds).delay(attempt, rand)


__all__ = ["RandomSource", "RetryPolicy", "backoff_delay"]
