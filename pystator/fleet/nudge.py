"""Nudges: tiny "look at this entity" messages published after commit.

The table is the source of truth; a nudge only makes a worker look sooner. Losing one costs
latency (the relay re-publishes), never an event. Implementations: :class:`LocalNudger` (wakes
drain threads of this process: the embedded mode) and :class:`CeleryNudger` (a Celery message
naming ``(machine, entity_id)`` entities, or a ``drain`` message for big batches).

**``through``.** A producer's nudge says which events it is about: every event it announces has
an id at most ``through``. A worker that knows every event up to some id is already settled (see
:mod:`pystator.fleet.staleness`) drops such a nudge without touching the database, so a backlog
of stale nudges left by a burst costs almost nothing and fresh work does not wait behind it.
Nudges for work that becomes due later (relay, timers, replays) carry no ``through``: always
looked at.

**A bounded queue.** :class:`CeleryNudger` publishes through a
:class:`~pystator.fleet.nudge_gate.NudgeGate` when the broker's queue depth can be read: past a
bound it publishes nothing and owes one ``drain`` message instead, which
:class:`BackgroundNudger` publishes as soon as the queue has room again.
"""

from __future__ import annotations

import atexit
import math
import queue
import threading
import time
from collections.abc import Sequence
from typing import Any, Protocol

from celery import Celery

from pystator.fleet.nudge_gate import NudgeGate
from pystator.fleet.observer import FleetObserver
from pystator.fleet.tasks import DRAIN_TASK, PROCESS_ENTITIES_TASK, PROCESS_ENTITY_TASK
from pystator.fsm_core.records import EntityKey

#: Above this many entities in one submission, publish ``drain`` messages instead of one
#: message per entity (a drain claims many entities per transaction).
DRAIN_THRESHOLD = 32
#: Entities one drain message is expected to cover (one claim batch).
ENTITIES_PER_DRAIN = 64
#: Most drain messages one submission publishes.
MAX_DRAIN_MESSAGES = 16

#: Most entities one ``process_entities`` message names.
ENTITIES_PER_MESSAGE = DRAIN_THRESHOLD


def merge_through(a: int | None, b: int | None) -> int | None:
    """``through`` of two nudges sent as one: unknown (None) if either is."""
    return None if a is None or b is None else max(a, b)


class Nudger(Protocol):
    """Tells workers that entities have due events."""

    def nudge(self, keys: Sequence[EntityKey], *, through: int | None = None) -> None:
        """Publish nudges for ``keys`` (best effort: never raises); ``through`` is the highest
        event id they announce (None: work that became due by itself, always looked at)."""

    def flush(self, timeout: float = ...) -> bool:
        """Wait until every nudge asked for so far is published; False on timeout."""

    def repay(self) -> bool:
        """Publish what is owed for nudges left out (see :class:`CeleryNudger`) if it may be
        published now; True while something is still owed."""


class NullNudger:
    """Publishes nothing (workers poll or the relay finds the events)."""

    def nudge(self, keys: Sequence[EntityKey], *, through: int | None = None) -> None:
        """Do nothing."""

    def flush(self, timeout: float = 0.0) -> bool:
        """Nothing is ever queued."""
        return True

    def repay(self) -> bool:
        """Nothing is ever owed."""
        return False


class LocalNudger:
    """Wakes this process's drain threads (embedded mode)."""

    def __init__(self) -> None:
        self.wakeup = threading.Event()

    def nudge(self, keys: Sequence[EntityKey], *, through: int | None = None) -> None:
        """Wake the drain loop when there is anything to look at."""
        if keys:
            self.wakeup.set()

    def flush(self, timeout: float = 0.0) -> bool:
        """Wake-ups are immediate."""
        return True

    def repay(self) -> bool:
        """Nothing is ever owed."""
        return False


class CeleryNudger:
    """Publishes nudges on ``queue``: ``pystator.process_entity`` for one entity,
    ``pystator.process_entities`` naming up to 32, ``pystator.drain`` for more.

    With a ``gate``, a nudge is published only when the gate has room for its messages; with
    room for fewer, that many ``drain`` messages stand for them all (a drain claims any due
    entity, so they still spread over the workers); with none, the nudge is left out and a
    ``drain`` is owed (:meth:`repay`).
    """

    def __init__(
        self,
        app: Celery,
        queue: str,
        observer: FleetObserver | None = None,
        gate: NudgeGate | None = None,
    ) -> None:
        self.app = app
        self.queue = queue
        self.observer = observer or FleetObserver()
        self.gate = gate

    def nudge(self, keys: Sequence[EntityKey], *, through: int | None = None) -> None:
        """Publish; a broker failure is reported to the observer (the relay re-publishes)."""
        unique = list(dict.fromkeys(keys))
        if not unique:
            return
        messages = self._messages(unique, through)
        if self.gate is not None:
            self.repay()
            room = self.gate.room()
            if room < 1:
                self.gate.leave_out(len(messages), through)
                self.observer.nudges_left_out(len(messages), len(unique))
                return
            if room < len(messages):  # as many drains as there is room for: each claims any
                messages = [(DRAIN_TASK, [through])] * room
        self._publish(messages, len(unique))

    def repay(self) -> bool:
        """Publish the ``drain`` owed for left-out nudges once the gate has room; True while
        one is still owed."""
        if self.gate is None:
            return False
        owed, through = self.gate.take_debt()
        if owed:
            self._publish([(DRAIN_TASK, [through])], 0, counted=True)
        return self.gate.in_debt

    def flush(self, timeout: float = 0.0) -> bool:
        """Publishing is synchronous: nothing is ever left queued."""
        return True

    @staticmethod
    def _messages(unique: list[EntityKey], through: int | None) -> list[tuple[str, list[Any]]]:
        if len(unique) > DRAIN_THRESHOLD:
            count = min(math.ceil(len(unique) / ENTITIES_PER_DRAIN), MAX_DRAIN_MESSAGES)
            return [(DRAIN_TASK, [through])] * count
        if len(unique) == 1:
            return [(PROCESS_ENTITY_TASK, [*unique[0], through])]
        return [
            (
                PROCESS_ENTITIES_TASK,
                [[list(k) for k in unique[i : i + ENTITIES_PER_MESSAGE]], through],
            )
            for i in range(0, len(unique), ENTITIES_PER_MESSAGE)
        ]

    def _publish(
        self, messages: list[tuple[str, list[Any]]], entities: int, *, counted: bool = False
    ) -> None:
        sent = 0
        try:
            for task, args in messages:
                self.app.send_task(task, args=args, queue=self.queue, ignore_result=True)
                sent += 1
        except Exception as exc:  # kombu/redis/amqp errors: the relay is the safety net
            self.observer.nudge_failed(f"{type(exc).__name__}: {exc}", entities)
            return
        finally:
            if self.gate is not None and not counted:
                self.gate.sent(sent)
        self.observer.nudges_sent(sent, entities)


#: Seconds :meth:`BackgroundNudger.flush` waits at interpreter exit for unsent nudges.
FLUSH_TIMEOUT_SECONDS = 2.0
#: Seconds the background nudger waits after a key for another one to share its message. A
#: publish costs a few hundred microseconds of CPU; at high submit rates one message then names
#: several entities, and the producer thread keeps most of the CPU.
DEFAULT_LINGER_SECONDS = 0.002
#: Longest a message is held back while keys keep coming (the coalescing's latency cap).
DEFAULT_MAX_LINGER_SECONDS = 0.01
#: Seconds between two looks, while a ``drain`` is owed, at whether it may be published.
REPAY_SECONDS = 0.1

_Item = tuple[EntityKey, int | None]


class BackgroundNudger:
    """Publishes through ``inner`` from a background thread, so submitting never waits on the
    broker. While keys keep arriving less than ``linger`` seconds apart they are published
    together (one nudge per entity; held back at most ``max_linger``), so a burst sends a few
    full messages instead of many small ones. A nudge still unsent when the process
    dies is covered by the relay."""

    def __init__(
        self,
        inner: Nudger,
        *,
        linger: float = DEFAULT_LINGER_SECONDS,
        max_linger: float = DEFAULT_MAX_LINGER_SECONDS,
    ) -> None:
        self.inner = inner
        self.linger = linger
        self.max_linger = max_linger
        self._queue: queue.SimpleQueue[_Item] = queue.SimpleQueue()
        self._idle = threading.Event()
        self._idle.set()
        self._thread = threading.Thread(target=self._run, name="pystator-nudger", daemon=True)
        self._thread.start()
        atexit.register(self.flush)

    def nudge(self, keys: Sequence[EntityKey], *, through: int | None = None) -> None:
        """Queue ``keys`` for publishing; returns at once."""
        if keys:
            self._idle.clear()
            for key in keys:
                self._queue.put((key, through))

    def flush(self, timeout: float = FLUSH_TIMEOUT_SECONDS) -> bool:
        """Wait until everything queued so far is published."""
        return self._idle.wait(timeout)

    def repay(self) -> bool:
        """Owed messages are published from the background thread."""
        return self.inner.repay()

    def _run(self) -> None:
        owing = False
        while True:
            try:  # while a drain is owed, look every refresh whether it may be published
                first_key, through = self._queue.get(timeout=REPAY_SECONDS if owing else None)
            except queue.Empty:
                owing = self.inner.repay()
                continue
            keys = {first_key: None}
            cap = time.monotonic() + self.max_linger
            while True:  # a whole batch's keys at once become drain messages downstream
                wait = min(self.linger, cap - time.monotonic())
                try:
                    key, item_through = (
                        self._queue.get(timeout=wait) if wait > 0 else self._queue.get_nowait()
                    )
                except queue.Empty:
                    break
                keys[key] = None
                through = merge_through(through, item_through)
            self.inner.nudge(list(keys), through=through)
            owing = self.inner.repay()
            if self._queue.empty():
                self._idle.set()


__all__ = [
    "BackgroundNudger",
    "CeleryNudger",
    "LocalNudger",
    "Nudger",
    "NullNudger",
    "merge_through",
]
