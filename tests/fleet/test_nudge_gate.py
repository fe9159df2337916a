"""The nudge gate's rule, on an injected depth and clock: the queue never holds more than
``bound + publishers * allowance`` messages, and nudges left out are owed one ``drain``."""

from __future__ import annotations

import random

import pytest

from pystator.fleet.nudge_gate import NudgeGate

BOUND = 20
ALLOWANCE = 4


class Broker:
    """A queue's depth that publishers add to and a consumer takes from."""

    def __init__(self) -> None:
        self.depth = 0
        self.peak = 0

    def publish(self, messages: int) -> None:
        self.depth += messages
        self.peak = max(self.peak, self.depth)

    def consume(self, messages: int) -> None:
        self.depth = max(self.depth - messages, 0)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def gate(broker: Broker, clock: Clock) -> NudgeGate:
    return NudgeGate(
        lambda: broker.depth, bound=BOUND, allowance=ALLOWANCE, refresh=0.1, monotonic=clock
    )


@pytest.mark.parametrize("seed", range(20))
def test_the_queue_never_holds_more_than_the_bound_whatever_the_interleaving(seed: int) -> None:
    rng = random.Random(seed)
    broker, clock = Broker(), Clock()
    publishers = [gate(broker, clock) for _ in range(5)]
    consuming = False
    for step in range(20_000):
        clock.now += rng.choice((0.0, 0.001, 0.05))
        if step % 2000 == 0:
            consuming = not consuming  # workers come and go
        if consuming:
            broker.consume(rng.randint(0, 3))
        publisher = rng.choice(publishers)
        wanted = rng.randint(1, 3)
        room = publisher.room()
        if room >= wanted:
            broker.publish(wanted)
            publisher.sent(wanted)
        elif room >= 1:
            broker.publish(1)  # one drain for them all
            publisher.sent(1)
        else:
            publisher.leave_out(wanted, through=step)
    assert broker.peak <= BOUND + len(publishers) * ALLOWANCE, broker.peak
    assert broker.peak >= BOUND  # the bound was reached: the interleavings tested something


def test_a_backlog_with_no_consumer_leaves_a_bounded_queue_and_a_debt() -> None:
    broker, clock = Broker(), Clock()
    producer = gate(broker, clock)
    for n in range(10_000):
        clock.now += 0.001
        if producer.room() >= 1:
            broker.publish(1)
            producer.sent(1)
        else:
            producer.leave_out(1, through=n)
    assert broker.depth <= BOUND + ALLOWANCE
    assert producer.left_out >= 10_000 - BOUND - ALLOWANCE
    assert producer.take_debt() == (False, None)  # the queue is still full: nothing yet
    broker.consume(broker.depth)
    clock.now += 0.1
    assert producer.take_debt() == (True, 9_999)  # one drain, naming the highest id left out
    assert not producer.in_debt
    assert producer.take_debt() == (False, None)


def test_a_full_queue_is_read_at_most_once_per_refresh() -> None:
    broker, clock = Broker(), Clock()
    producer = gate(broker, clock)
    broker.publish(BOUND)  # full
    for _ in range(100):
        assert producer.room() == 0
    assert producer.readings == 1
    clock.now += 0.1
    broker.consume(BOUND)
    assert producer.room() == ALLOWANCE
    assert producer.readings == 2


def test_a_healthy_queue_is_read_once_per_allowance_spent() -> None:
    broker, clock = Broker(), Clock()
    producer = gate(broker, clock)
    for _ in range(10 * ALLOWANCE):  # no time passes: the allowance alone asks for readings
        assert producer.room() >= 1
        producer.sent(1)
    assert producer.readings == 10


def test_an_unreadable_queue_leaves_the_gate_open() -> None:
    def broken() -> int:
        raise ConnectionError("broker down")

    producer = NudgeGate(broken, bound=BOUND, allowance=ALLOWANCE)
    assert producer.room() == ALLOWANCE
