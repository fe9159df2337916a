"""Nudges: message shapes per batch size, and the background nudger's coalescing."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from pystator.fleet.nudge import BackgroundNudger, CeleryNudger
from pystator.fleet.tasks import DRAIN_TASK, PROCESS_ENTITIES_TASK, PROCESS_ENTITY_TASK
from pystator.fsm_core.records import EntityKey
from tests.support.waiting import wait_until


class RecordingApp:
    """Stands in for the Celery app (a boundary we do not own): records what would be sent."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, list[Any], str]] = []

    def send_task(self, name: str, *, args: list[Any], queue: str, ignore_result: bool) -> None:
        self.sent.append((name, args, queue))


class RecordingNudger:
    def __init__(self) -> None:
        self.calls: list[list[EntityKey]] = []
        self.throughs: list[int | None] = []
        self.lock = threading.Lock()

    def nudge(self, keys: Sequence[EntityKey], *, through: int | None = None) -> None:
        with self.lock:
            self.calls.append(list(keys))
            self.throughs.append(through)

    def flush(self, timeout: float = 0.0) -> bool:
        return True

    def repay(self) -> bool:
        return False


def keys(n: int) -> list[EntityKey]:
    return [("m", f"e{i}") for i in range(n)]


def test_message_shape_follows_the_number_of_entities() -> None:
    app = RecordingApp()
    nudger = CeleryNudger(app, "q")  # type: ignore[arg-type]
    nudger.nudge([("m", "a"), ("m", "a")])
    nudger.nudge(keys(3))
    nudger.nudge(keys(33))
    names = [name for name, _args, _q in app.sent]
    assert names[0] == PROCESS_ENTITY_TASK and app.sent[0][1] == ["m", "a", None]
    assert names[1] == PROCESS_ENTITIES_TASK
    assert app.sent[1][1] == [[["m", "e0"], ["m", "e1"], ["m", "e2"]], None]
    assert set(names[2:]) == {DRAIN_TASK}
    assert {q for _n, _a, q in app.sent} == {"q"}


def test_a_broker_failure_is_swallowed() -> None:
    class Failing:
        def send_task(self, *_args: Any, **_kwargs: Any) -> None:
            raise ConnectionError("broker down")

    CeleryNudger(Failing(), "q").nudge(keys(2))  # type: ignore[arg-type]  # must not raise


def test_keys_arriving_within_the_linger_share_one_publish() -> None:
    inner = RecordingNudger()
    nudger = BackgroundNudger(inner, linger=0.2)
    for key in keys(10):
        nudger.nudge([key])
    assert nudger.flush(5)
    assert inner.calls == [keys(10)]


def test_without_linger_every_key_is_still_published() -> None:
    inner = RecordingNudger()
    nudger = BackgroundNudger(inner, linger=0)
    for key in keys(50) + keys(50):
        nudger.nudge([key])
    assert nudger.flush(5)
    published = [key for call in inner.calls for key in call]
    assert sorted(set(published)) == sorted(keys(50))


def test_a_nudge_says_through_which_event_it_announces() -> None:
    app = RecordingApp()
    nudger = CeleryNudger(app, "q")  # type: ignore[arg-type]
    nudger.nudge([("m", "a")], through=41)
    nudger.nudge(keys(3), through=42)
    nudger.nudge(keys(40), through=43)
    assert [args[-1] for _name, args, _q in app.sent] == [41, 42] + [43] * (len(app.sent) - 2)


def test_coalesced_nudges_announce_the_highest_id_unless_one_is_unknown() -> None:
    inner = RecordingNudger()
    nudger = BackgroundNudger(inner, linger=0.2)
    nudger.nudge([("m", "a")], through=7)
    nudger.nudge([("m", "b")], through=9)
    assert nudger.flush(5)
    nudger.nudge([("m", "c")], through=11)
    nudger.nudge([("m", "d")])  # the relay's: due by itself, no id
    assert nudger.flush(5)
    assert inner.throughs == [9, None]


def test_a_steady_stream_is_held_back_no_longer_than_the_cap() -> None:
    inner = RecordingNudger()
    nudger = BackgroundNudger(inner, linger=0.05, max_linger=0.1)
    stop = threading.Event()

    def stream() -> None:
        n = 0
        while not stop.is_set():
            nudger.nudge([("m", f"s{n}")])
            n += 1
            stop.wait(0.01)  # pacing: a key every 10 ms, well within the 50 ms linger

    producer = threading.Thread(target=stream)
    producer.start()
    try:  # not all held back, though the keys never pause
        wait_until(lambda: len(inner.calls) >= 2, timeout=10, interval=0.01, message="2 sends")
    finally:
        stop.set()
        producer.join()
    assert nudger.flush(5)
