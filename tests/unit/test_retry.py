"""The retry backoff: exponential ceiling, full jitter, capped, deterministic with injected random."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from pystator.worker.retry import RetryPolicy, backoff_delay


@pytest.mark.parametrize(("attempt", "ceiling"), [(1, 0.5), (2, 1.0), (3, 2.0), (6, 16.0)])
def test_ceiling_doubles_per_attempt(attempt: int, ceiling: float) -> None:
    assert RetryPolicy(base_seconds=0.5, max_seconds=300).ceiling(attempt) == ceiling


def test_ceiling_is_capped_and_survives_huge_attempts() -> None:
    policy = RetryPolicy(base_seconds=1, max_seconds=60)
    assert policy.ceiling(10) == 60
    assert policy.ceiling(10_000) == 60


def test_full_jitter_spans_zero_to_ceiling() -> None:
    policy = RetryPolicy(base_seconds=1, max_seconds=60)
    assert policy.delay(3, rand=lambda: 0.0) == 0.0
    assert policy.delay(3, rand=lambda: 0.5) == 2.0
    assert policy.delay(3, rand=lambda: 0.999) == pytest.approx(3.996)


def test_next_time_adds_the_delay() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    policy = RetryPolicy(base_seconds=2, max_seconds=60)
    assert policy.next_time(2, now, rand=lambda: 0.25) == now + timedelta(seconds=1)


def test_functional_form_matches_policy() -> None:
    assert backoff_delay(4, base_seconds=0.1, max_seconds=10, rand=lambda: 1.0) == pytest.approx(
        0.8
    )
