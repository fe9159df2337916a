"""RedisScheduler against a real Redis: arm/cancel, leased claims, retries and the poller thread.

Claims are driven with a fake clock (``claim_due(now)``, ``poll_once``); only the poller tests use
real time, and they assert outcomes within a generous deadline, never speeds.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis

from pystator.fsm_core.errors import SchedulerError
from pystator.fsm_core.records import ArmedTimer
from pystator.schedulers import RedisScheduler, Scheduler
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

T0 = datetime(2030, 1, 1, tzinfo=UTC)
WAIT_SECONDS = 10.0


class FakeClock:
    """A clock that tests move forward by hand."""

    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def make_timer(n: int, due_at: datetime | None, *, entry: int = 1) -> ArmedTimer:
    return ArmedTimer(
        machine="orders",
        entity_id=f"o-{n}",
        key="after:0",
        state="WAITING",
        entry=entry,
        trigger="expire",
        due_at=due_at,
    )


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


@pytest.fixture
def prefix(unique_name: str) -> str:
    return f"pystator:test:{unique_name}"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make_scheduler(redis_url: str, prefix: str) -> Iterator[Callable[..., RedisScheduler]]:
    """Build schedulers on this test's Redis database and prefix; all closed afterwards."""
    made: list[RedisScheduler] = []

    def make(**options: Any) -> RedisScheduler:
        scheduler = RedisScheduler(redis_url, prefix=prefix, **options)
        made.append(scheduler)
        return scheduler

    yield make
    for scheduler in made:
        scheduler.close()


@pytest.fixture
def scheduler(make_scheduler: Callable[..., RedisScheduler], clock: FakeClock) -> RedisScheduler:
    return make_scheduler(clock=clock)


@pytest.fixture
def raw(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def test_is_a_scheduler(scheduler: RedisScheduler) -> None:
    assert isinstance(scheduler, Scheduler)


def test_arm_is_idempotent_and_rearm_moves_the_due_time(
    scheduler: RedisScheduler, raw: redis.Redis, prefix: str
) -> None:
    first = make_timer(1, at(10))
    scheduler.arm([first])
    scheduler.arm([first])
    assert scheduler.pending_count() == 1
    assert raw.hlen(f"{prefix}:payloads") == 1

    later = make_timer(1, at(20))
    assert later.timer_id == first.timer_id
    scheduler.arm([later])
    assert scheduler.pending_count() == 1
    assert scheduler.claim_due(at(10)) == []
    assert scheduler.claim_due(at(20)) == [later]


def test_cancel_removes_timer_and_payload_and_ignores_unknown_ids(
    scheduler: RedisScheduler, raw: redis.Redis, prefix: str
) -> None:
    kept, cancelled = make_timer(1, at(1)), make_timer(2, at(1))
    scheduler.arm([kept, cancelled])
    scheduler.cancel([cancelled, make_timer(3, None)])
    scheduler.cancel([])

    assert scheduler.pending_count() == 1
    assert raw.hkeys(f"{prefix}:payloads") == [kept.timer_id.encode()]
    assert scheduler.claim_due(at(60)) == [kept]


def test_cancel_of_a_claimed_timer_is_final(
    scheduler: RedisScheduler, raw: redis.Redis, prefix: str
) -> None:
    timer = make_timer(1, at(0))
    scheduler.arm([timer])
    assert scheduler.claim_due(at(0)) == [timer]

    scheduler.cancel([timer])
    assert scheduler.release([timer.timer_id]) == 0
    assert scheduler.ack([timer.timer_id]) == 0
    assert (scheduler.pending_count(), scheduler.claimed_count()) == (0, 0)
    assert raw.hlen(f"{prefix}:payloads") == 0
    assert scheduler.claim_due(at(3600)) == []


def test_arm_needs_an_aware_due_time(scheduler: RedisScheduler) -> None:
    with pytest.raises(SchedulerError, match="no due_at"):
        scheduler.arm([make_timer(1, None)])
    with pytest.raises(SchedulerError, match="naive"):
        scheduler.arm([make_timer(1, datetime(2030, 1, 1))])
    assert scheduler.pending_count() == 0


def test_claims_only_due_timers_in_due_order_and_ack_forgets_them(
    scheduler: RedisScheduler, raw: redis.Redis, prefix: str
) -> None:
    timers = [make_timer(n, at(n)) for n in range(1, 6)]
    scheduler.arm(list(reversed(timers)))

    assert scheduler.claim_due(at(0.5)) == []
    assert scheduler.claim_due(at(3), limit=2) == timers[:2]
    assert scheduler.claim_due(at(3)) == timers[2:3]
    assert (scheduler.pending_count(), scheduler.claimed_count()) == (2, 3)

    assert scheduler.ack(t.timer_id for t in timers[:3]) == 3
    assert scheduler.claimed_count() == 0
    assert raw.hlen(f"{prefix}:payloads") == 2


def test_two_concurrent_claimers_never_share_a_timer(
    make_scheduler: Callable[..., RedisScheduler],
) -> None:
    timers = [make_timer(n, at(n % 7)) for n in range(1000)]
    claimers = [make_scheduler(batch_size=10) for _ in range(2)]
    claimers[0].arm(timers)
    start = threading.Barrier(len(claimers))
    got: list[list[str]] = [[] for _ in claimers]

    def claim_all(index: int) -> None:
        start.wait()
        while batch := claimers[index].claim_due(at(60)):
            ids = [t.timer_id for t in batch]
            got[index].extend(ids)
            claimers[index].ack(ids)

    threads = [threading.Thread(target=claim_all, args=(i,)) for i in range(len(claimers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT_SECONDS)

    assert all(got), "both claimers should have claimed some timers"
    assert not set(got[0]) & set(got[1])
    assert sorted(got[0] + got[1]) == sorted(t.timer_id for t in timers)
    assert (claimers[0].pending_count(), claimers[0].claimed_count()) == (0, 0)


def test_a_claim_never_acked_is_claimed_again_after_its_lease(
    make_scheduler: Callable[..., RedisScheduler],
) -> None:
    timer = make_timer(1, at(0))
    dead = make_scheduler(lease_seconds=30)
    dead.arm([timer])
    assert dead.claim_due(at(0)) == [timer]  # ... and its process dies before acking

    survivor = make_scheduler(lease_seconds=30)
    assert survivor.claim_due(at(29.9)) == []
    assert survivor.claimed_count() == 1
    assert survivor.claim_due(at(30.1)) == [timer]
    assert survivor.ack([timer.timer_id]) == 1
    assert (survivor.pending_count(), survivor.claimed_count()) == (0, 0)


def test_a_failing_callback_is_logged_released_and_retried(
    make_scheduler: Callable[..., RedisScheduler],
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    scheduler = make_scheduler(clock=clock, retry_delay=2)
    timer = make_timer(1, at(0))
    scheduler.arm([timer])
    calls: list[ArmedTimer] = []

    def fire(fired: ArmedTimer) -> None:
        calls.append(fired)
        if len(calls) == 1:
            raise RuntimeError("downstream is down")

    with caplog.at_level(logging.ERROR, logger="pystator.schedulers.redis"):
        assert scheduler.poll_once(fire) == 1
    assert timer.timer_id in caplog.text
    assert "RuntimeError: downstream is down" in caplog.text  # with its traceback
    assert (scheduler.pending_count(), scheduler.claimed_count()) == (1, 0)

    clock.advance(1)
    assert scheduler.poll_once(fire) == 0  # still backing off
    clock.advance(1)
    assert scheduler.poll_once(fire) == 1
    assert calls == [timer, timer]
    assert (scheduler.pending_count(), scheduler.claimed_count()) == (0, 0)


def test_an_async_callback_is_awaited(scheduler: RedisScheduler) -> None:
    timer = make_timer(1, at(0))
    scheduler.arm([timer])
    fired: list[ArmedTimer] = []

    async def fire(t: ArmedTimer) -> None:
        await asyncio.sleep(0)
        fired.append(t)

    assert scheduler.poll_once(fire) == 1
    assert fired == [timer]
    assert scheduler.claimed_count() == 0


def test_a_batch_outliving_half_its_lease_releases_the_rest(
    make_scheduler: Callable[..., RedisScheduler], clock: FakeClock
) -> None:
    scheduler = make_scheduler(clock=clock, lease_seconds=10)
    timers = [make_timer(n, at(0)) for n in range(3)]
    scheduler.arm(timers)
    fired: list[ArmedTimer] = []

    def slow_fire(t: ArmedTimer) -> None:
        fired.append(t)
        clock.advance(6)

    assert scheduler.poll_once(slow_fire) == 3
    assert len(fired) == 1  # then half the lease was gone: the other two were released
    assert (scheduler.pending_count(), scheduler.claimed_count()) == (2, 0)
    rest = {t.timer_id for t in timers} - {fired[0].timer_id}
    assert {t.timer_id for t in scheduler.claim_due()} == rest


def test_the_poller_thread_fires_timers_once_they_are_due(
    make_scheduler: Callable[..., RedisScheduler], prefix: str
) -> None:
    scheduler = make_scheduler()
    now = datetime.now(UTC)
    timers = [make_timer(n, now + timedelta(milliseconds=50 + 10 * n)) for n in range(6)]
    cancelled = make_timer(99, now + timedelta(milliseconds=50))
    scheduler.arm([*timers, cancelled])
    scheduler.cancel([cancelled])
    fired: list[ArmedTimer] = []
    lock = threading.Lock()

    async def fire(t: ArmedTimer) -> None:
        with lock:
            fired.append(t)

    scheduler.start(fire)
    scheduler.start(fire)  # idempotent
    wait_until(lambda: len(fired) == len(timers), timeout=WAIT_SECONDS)
    asyncio.run(scheduler.aclose())

    assert sorted(fired, key=lambda t: t.entity_id) == timers
    assert all(t.due_at is not None and t.due_at <= datetime.now(UTC) for t in fired)
    assert not [t for t in threading.enumerate() if t.name == f"pystator-timers:{prefix}"]


def test_pollers_in_two_schedulers_share_the_timers(
    make_scheduler: Callable[..., RedisScheduler],
) -> None:
    pollers = [make_scheduler(batch_size=5), make_scheduler(batch_size=5)]
    due = datetime.now(UTC) + timedelta(milliseconds=50)
    timers = [make_timer(n, due) for n in range(200)]
    pollers[0].arm(timers)
    fired: list[str] = []
    lock = threading.Lock()

    def fire(t: ArmedTimer) -> None:
        with lock:
            fired.append(t.timer_id)

    for poller in pollers:
        poller.start(fire)
    wait_until(
        lambda: len(fired) >= len(timers) and pollers[0].claimed_count() == 0,
        timeout=WAIT_SECONDS,
    )
    for poller in pollers:
        poller.close()

    assert sorted(fired) == sorted(t.timer_id for t in timers)


def test_redis_errors_become_scheduler_errors() -> None:
    scheduler = RedisScheduler("redis://127.0.0.1:1/0")
    try:
        with pytest.raises(SchedulerError, match="could not arm") as caught:
            scheduler.arm([make_timer(1, T0)])
        assert isinstance(caught.value.__cause__, redis.ConnectionError)
        with pytest.raises(SchedulerError, match="could not claim"):
            scheduler.claim_due(T0)
    finally:
        scheduler.close()


def test_one_scheduler_refuses_a_second_different_callback(
    make_scheduler: Callable[..., RedisScheduler],
) -> None:
    scheduler = make_scheduler()

    def first(_t: ArmedTimer) -> None:
        return None

    scheduler.start(first)
    scheduler.start(first)  # the same callback again: idempotent
    with pytest.raises(SchedulerError, match="own RedisScheduler"):
        scheduler.start(lambda _t: None)  # a second Orchestrator would steal the first's timers
    scheduler.close()
