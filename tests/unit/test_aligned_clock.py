"""The fleet's clock: the host's wall clock plus a measured offset to the database server's."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from pystator.clock import AlignedClock, Clock, refresh_clock

START = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


class Ticks:
    """A monotonic clock a test moves by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def local() -> datetime:
    return START


def test_it_reads_the_local_clock_plus_the_measured_offset() -> None:
    probes: list[Clock] = []

    def probe(clock: Clock) -> timedelta:
        probes.append(clock)
        return timedelta(seconds=-3)

    clock = AlignedClock(probe, local=local)
    assert clock() == START  # nothing measured yet: the local clock
    clock.refresh_if_stale()
    assert clock() == START - timedelta(seconds=3)
    assert probes == [local]  # the probe compares the server with this same local clock


def test_it_measures_again_only_when_the_last_measurement_is_stale() -> None:
    offsets = iter([timedelta(seconds=1), timedelta(seconds=2)])
    ticks = Ticks()
    clock = AlignedClock(
        lambda _local: next(offsets), local=local, every_seconds=30, monotonic=ticks
    )
    clock.refresh_if_stale()
    ticks.now = 29.9
    clock.refresh_if_stale()
    assert (clock.offset, clock.measurements) == (timedelta(seconds=1), 1)
    ticks.now = 30.0
    clock.refresh_if_stale()
    assert (clock.offset, clock.measurements) == (timedelta(seconds=2), 2)


def test_a_failed_measurement_keeps_the_last_offset_and_is_not_retried_at_once() -> None:
    answers = iter([timedelta(seconds=4), None])
    calls: list[int] = []
    ticks = Ticks()

    def probe(_local: Clock) -> timedelta | None:
        calls.append(1)
        return next(answers)

    clock = AlignedClock(probe, local=local, every_seconds=10, monotonic=ticks)
    clock.refresh_if_stale()
    ticks.now = 10
    clock.refresh_if_stale()  # the server is unreachable
    clock.refresh_if_stale()  # not asked again before another 10 s
    assert clock.offset == timedelta(seconds=4)
    assert len(calls) == 2


def test_one_thread_measures_while_the_others_go_on() -> None:
    entered = threading.Event()
    release = threading.Event()
    calls: list[int] = []

    def slow_probe(_local: Clock) -> timedelta:
        calls.append(1)
        entered.set()
        release.wait(5)
        return timedelta(seconds=1)

    clock = AlignedClock(slow_probe, local=local)
    first = threading.Thread(target=clock.refresh_if_stale)
    first.start()
    assert entered.wait(5)
    clock.refresh_if_stale()  # returns at once: another thread is measuring
    assert clock() == START
    release.set()
    first.join(5)
    assert (len(calls), clock()) == (1, START + timedelta(seconds=1))


def test_without_a_probe_it_is_the_local_clock() -> None:
    clock = AlignedClock(None, local=local)
    clock.refresh_if_stale()
    assert (clock(), clock.measurements) == (START, 0)
    refresh_clock(local)  # any other clock: nothing to do
