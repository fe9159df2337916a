"""The one backoff computation: exponential ceiling, full jitter, capped, injected random."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from pystator import RetryPolicy
from pystator.fsm_core.backoff import Backoff, backoff_ceiling


@pytest.mark.parametrize(("attempt", "ceiling"), [(1, 0.5), (2, 1.0), (3, 2.0), (6, 16.0)])
def test_ceiling_doubles_per_attempt(attempt: int, ceiling: float) -> None:
    assert Backoff(base_seconds=0.5, max_seconds=300).ceiling(attempt) == ceiling


def test_ceiling_is_capped_and_survives_huge_attempts() -> None:
    policy = Backoff(base_seconds=1, max_seconds=60)
    assert policy.ceiling(10) == 60
    assert policy.ceiling(10_000) == 60


def test_full_jitter_spans_zero_to_ceiling() -> None:
    policy = Backoff(base_seconds=1, max_seconds=60)
    assert policy.delay(3, rand=lambda: 0.0) == 0.0
    assert policy.delay(3, rand=lambda: 0.5) == 2.0
    assert policy.delay(3, rand=lambda: 0.999) == pytest.approx(3.996)


def test_next_time_adds_the_delay() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    policy = Backoff(base_seconds=2, max_seconds=60)
    assert policy.next_time(2, now, rand=lambda: 0.25) == now + timedelta(seconds=1)


def test_functional_form_matches_policy() -> None:
    policy = Backoff(base_seconds=0.1, max_seconds=10)
    assert backoff_ceiling(4, base_seconds=0.1, max_seconds=10) == pytest.approx(0.8)
    assert policy.delay(4, rand=lambda: 1.0) == pytest.approx(0.8)


def test_without_jitter_the_delay_is_the_ceiling() -> None:
    policy = Backoff(base_seconds=1, max_seconds=60, multiplier=3, jitter=False)
    assert [policy.delay(n, rand=lambda: 0.0) for n in (1, 2, 3, 4, 5)] == [1, 3, 9, 27, 60]


def test_the_action_retry_policy_uses_the_same_ceiling() -> None:
    policy = RetryPolicy(max_attempts=5, backoff_seconds=0.2, multiplier=2, max_backoff_seconds=1)
    ceilings = [backoff_ceiling(n, base_seconds=0.2, max_seconds=1) for n in (1, 2, 3, 4)]
    assert [policy.delay_after(n) for n in (1, 2, 3, 4)] == ceilings
