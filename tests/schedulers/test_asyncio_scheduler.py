"""AsyncioScheduler: arm, fire, cancel, retry and close, in a running loop and from plain code.

Delays are a few tens of milliseconds and every wait has a generous safety timeout; assertions are
about outcomes and order, never about how fast something happened.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import pytest

from pystator.fsm_core.backoff import backoff_ceiling
from pystator.fsm_core.errors import SchedulerError
from pystator.fsm_core.records import ArmedTimer
from pystator.scheduler import AsyncioScheduler, FireCallback, Scheduler
from pystator.schedulers.asyncio_scheduler import BACKGROUND_THREAD_NAME
from tests.support.waiting import until as wait_on_loop

SAFETY_TIMEOUT = 10.0  # only reached if a timer never fires: the test then fails, not hangs
T0 = datetime(2024, 1, 1, 12, 0, tzinfo=UTC)


def timer(
    key: str, *, due_in: float = 0.02, now: datetime | None = None, entry: int = 1
) -> ArmedTimer:
    """A timer of entity ``e1`` due ``due_in`` seconds after ``now`` (default: the real now)."""
    base = now if now is not None else datetime.now(UTC)
    return ArmedTimer(
        machine="m",
        entity_id="e1",
        key=key,
        state="WAITING",
        entry=entry,
        trigger=f"fire_{key}",
        due_at=base + timedelta(seconds=due_in),
    )


class Recorder:
    """A fire callback that records keys and lets a test wait for a given key."""

    def __init__(self) -> None:
        self.fired: list[str] = []
        self.threads: list[str] = []
        self._seen = threading.Condition()

    def __call__(self, armed: ArmedTimer) -> None:
        with self._seen:
            self.fired.append(armed.key)
            self.threads.append(threading.current_thread().name)
            self._seen.notify_all()

    def wait_for(self, key: str) -> None:
        """Block until ``key`` has fired (for use without an event loop)."""
        with self._seen:
            assert self._seen.wait_for(lambda: key in self.fired, SAFETY_TIMEOUT), self.fired

    async def until(self, key: str) -> None:
        """Wait in the running loop until ``key`` has fired."""
        await until(lambda: key in self.fired)


async def until(condition: Callable[[], bool]) -> None:
    """Yield to the loop until ``condition`` holds (fails after the safety timeout)."""
    await wait_on_loop(condition, timeout=SAFETY_TIMEOUT, interval=0.005)


def run(
    scenario: Callable[[AsyncioScheduler], Awaitable[None]],
    scheduler: AsyncioScheduler | None = None,
) -> None:
    """Run an async scenario in a fresh event loop, closing the scheduler afterwards."""
    used = scheduler if scheduler is not None else AsyncioScheduler()

    async def main() -> None:
        try:
            await scenario(used)
        finally:
            await used.aclose()

    asyncio.run(main())


def test_is_a_scheduler_and_reexported() -> None:
    from pystator import schedulers

    assert isinstance(AsyncioScheduler(), Scheduler)
    assert schedulers.AsyncioScheduler is AsyncioScheduler
    assert FireCallback is schedulers.FireCallback


def test_timers_fire_in_due_order_within_the_running_loop() -> None:
    recorder = Recorder()

    async def scenario(scheduler: AsyncioScheduler) -> None:
        scheduler.start(recorder)
        scheduler.arm([timer("late", due_in=0.05), timer("early", due_in=0.02)])
        assert scheduler.pending() == 2
        await recorder.until("late")
        assert scheduler.pending() == 0

    run(scenario)
    assert recorder.fired == ["early", "late"]
    assert recorder.threads == [threading.main_thread().name] * 2


def test_cancelled_timer_never_fires() -> None:
    recorder = Recorder()

    async def scenario(scheduler: AsyncioScheduler) -> None:
        scheduler.start(recorder)
        doomed = timer("doomed", due_in=0.02)
        scheduler.arm([doomed, timer("sentinel", due_in=0.05)])
        scheduler.cancel([doomed, timer("never-armed")])
        assert scheduler.pending_ids() == [timer("sentinel").timer_id]
        await recorder.until("sentinel")

    run(scenario)
    assert recorder.fired == ["sentinel"]


def test_rearming_the_same_id_keeps_one_timer() -> None:
    recorder = Recorder()

    async def scenario(scheduler: AsyncioScheduler) -> None:
        scheduler.start(recorder)
        scheduler.arm([timer("t", due_in=0.02)])
        scheduler.arm([timer("t", due_in=0.03)])
        assert scheduler.pending() == 1
        scheduler.arm([timer("sentinel", due_in=0.06)])
        await recorder.until("sentinel")

    run(scenario)
    assert recorder.fired == ["t", "sentinel"]


def test_delay_comes_from_the_injected_clock() -> None:
    recorder = Recorder()

    async def scenario(scheduler: AsyncioScheduler) -> None:
        scheduler.start(recorder)
        scheduler.arm([timer("future", due_in=3600, now=T0), timer("past", due_in=-60, now=T0)])
        await recorder.until("past")
        assert scheduler.pending_ids() == [timer("future").timer_id]

    run(scenario, AsyncioScheduler(clock=lambda: T0))
    assert recorder.fired == ["past"]


def test_async_fire_callback_is_awaited() -> None:
    done: list[str] = []

    async def fire(armed: ArmedTimer) -> None:
        await asyncio.sleep(0)  # suspends: the append happens only if the result is awaited
        done.append(armed.key)

    async def scenario(scheduler: AsyncioScheduler) -> None:
        scheduler.start(fire)
        scheduler.arm([timer("a")])
        await until(lambda: scheduler.pending() == 0)

    run(scenario)
    assert done == ["a"]


def test_failing_callback_is_logged_and_retried(caplog: pytest.LogCaptureFixture) -> None:
    calls: list[str] = []

    def flaky(armed: ArmedTimer) -> None:
        calls.append(armed.key)
        if len(calls) < 3:
            raise RuntimeError("store unavailable")

    async def scenario(scheduler: AsyncioScheduler) -> None:
        scheduler.start(flaky)
        scheduler.arm([timer("f")])
        await until(lambda: scheduler.pending() == 0)

    with caplog.at_level(logging.ERROR, logger="pystator.schedulers.asyncio"):
        run(scenario, AsyncioScheduler(retry_base=0.01, retry_max=0.02))
    assert calls == ["f", "f", "f"]
    failures = [r for r in caplog.records if "fire callback failed" in r.getMessage()]
    assert len(failures) == 2
    assert all(r.exc_info and isinstance(r.exc_info[1], RuntimeError) for r in failures)
    assert timer("f").timer_id in failures[0].getMessage()


def test_max_attempts_gives_up_loudly(caplog: pytest.LogCaptureFixture) -> None:
    calls: list[str] = []

    def broken(armed: ArmedTimer) -> None:
        calls.append(armed.key)
        raise ValueError("poison")

    async def scenario(scheduler: AsyncioScheduler) -> None:
        scheduler.start(broken)
        scheduler.arm([timer("p")])
        await until(lambda: scheduler.pending() == 0)

    with caplog.at_level(logging.ERROR, logger="pystator.schedulers.asyncio"):
        run(scenario, AsyncioScheduler(retry_base=0.0, max_attempts=2))
    assert calls == ["p", "p"]
    assert "giving up" in caplog.records[-1].getMessage()


def test_cancel_from_inside_the_callback_prevents_the_retry() -> None:
    calls: list[str] = []

    async def scenario(scheduler: AsyncioScheduler) -> None:
        def fire(armed: ArmedTimer) -> None:  # leaves the state: cancels its own timer, fails
            calls.append(armed.key)
            scheduler.cancel([armed])
            raise RuntimeError("action failed after commit")

        scheduler.start(fire)
        scheduler.arm([timer("self")])
        await until(lambda: scheduler.pending() == 0)
        scheduler.arm([timer("sentinel")])
        await until(lambda: scheduler.pending() == 0)

    with pytest.MonkeyPatch.context() as mp:  # keep the expected error logs out of the output
        mp.setattr(logging.getLogger("pystator.schedulers.asyncio"), "disabled", True)
        run(scenario, AsyncioScheduler(retry_base=0.0))
    assert calls == ["self", "sentinel"]


def test_sync_usage_fires_on_a_background_thread() -> None:
    recorder = Recorder()
    scheduler = AsyncioScheduler()
    scheduler.start(recorder)
    scheduler.arm([timer("bg")])  # no running loop here
    recorder.wait_for("bg")
    assert recorder.threads == [BACKGROUND_THREAD_NAME]
    asyncio.run(scheduler.aclose())
    assert not any(t.name == BACKGROUND_THREAD_NAME for t in threading.enumerate())


def test_callback_on_the_background_thread_can_arm_the_next_timer() -> None:
    recorder = Recorder()
    scheduler = AsyncioScheduler()

    def chain(armed: ArmedTimer) -> None:
        recorder(armed)
        if armed.key == "first":
            scheduler.arm([timer("second")])

    scheduler.start(chain)
    scheduler.arm([timer("first")])
    recorder.wait_for("second")
    asyncio.run(scheduler.aclose())
    assert recorder.fired == ["first", "second"]
    assert recorder.threads == [BACKGROUND_THREAD_NAME] * 2


def test_aclose_stops_everything_and_refuses_new_timers() -> None:
    entered: list[str] = []
    recorder = Recorder()

    async def hang(armed: ArmedTimer) -> None:
        entered.append(armed.key)
        await asyncio.Event().wait()  # hangs until cancelled

    async def scenario(scheduler: AsyncioScheduler) -> None:
        scheduler.start(hang)
        scheduler.arm([timer("running"), timer("waiting", due_in=3600)])
        await until(lambda: entered == ["running"])
        await scheduler.aclose()  # cancels the hanging callback and the waiting timer
        assert scheduler.closed
        assert scheduler.pending() == 0
        with pytest.raises(SchedulerError, match="closed"):
            scheduler.arm([timer("late")])
        with pytest.raises(SchedulerError, match="closed"):
            scheduler.start(recorder)
        scheduler.cancel([timer("waiting")])  # harmless after close

    run(scenario)
    assert entered == ["running"]


def test_aclose_stops_the_background_thread_with_timers_pending() -> None:
    scheduler = AsyncioScheduler()
    scheduler.start(Recorder())
    scheduler.arm([timer("far", due_in=3600)])
    assert any(t.name == BACKGROUND_THREAD_NAME for t in threading.enumerate())
    asyncio.run(scheduler.aclose())
    asyncio.run(scheduler.aclose())  # idempotent
    assert scheduler.pending() == 0
    assert not any(t.name == BACKGROUND_THREAD_NAME for t in threading.enumerate())
    with pytest.raises(SchedulerError):
        scheduler.arm([timer("late")])


def test_bad_arms_are_refused() -> None:
    scheduler = AsyncioScheduler()
    with pytest.raises(SchedulerError, match="start"):
        scheduler.arm([timer("early")])
    recorder = Recorder()
    scheduler.start(recorder)
    scheduler.start(recorder)  # the same callback again: idempotent
    with pytest.raises(SchedulerError, match="another fire callback"):
        scheduler.start(Recorder())
    undated = ArmedTimer(machine="m", entity_id="e1", key="k", state="S", entry=1, trigger="t")
    with pytest.raises(SchedulerError, match="no due_at"):
        scheduler.arm([undated])
    naive = ArmedTimer(
        machine="m",
        entity_id="e1",
        key="k",
        state="S",
        entry=1,
        trigger="t",
        due_at=datetime(2024, 1, 1),
    )
    with pytest.raises(SchedulerError, match="naive"):
        scheduler.arm([naive])
    scheduler.arm([])  # nothing to do, and no background thread for it
    assert scheduler.pending() == 0
    assert not any(t.name == BACKGROUND_THREAD_NAME for t in threading.enumerate())
    with pytest.raises(SchedulerError):
        AsyncioScheduler(retry_base=1.0, retry_max=0.5)


def test_retry_backoff_doubles_up_to_the_cap() -> None:
    ceilings = [backoff_ceiling(n, base_seconds=0.5, max_seconds=3.0) for n in (1, 2, 3, 4, 5)]
    assert ceilings == [0.5, 1.0, 2.0, 3.0, 3.0]
