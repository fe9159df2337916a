"""Nudges: tiny "look at this entity" messages published after commit.

The table is the source of truth; a nudge only makes a worker look sooner. Losing one costs
latency (the relay re-publishes), never an event. Implementations: :class:`LocalNudger` (wakes
drain threads of this process: the embedded mode) and :class:`CeleryNudger` (a Celery message
naming ``(machine, entity_id)``, or a ``drain`` message for big batches).
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

from pystator.fsm_core.records import EntityKey
from pystator.worker.observer import FleetObserver
from pystator.worker.tasks import DRAIN_TASK, PROCESS_ENTITIES_TASK, PROCESS_ENTITY_TASK

#: Above this many entities in one submission, publish ``drain`` messages instead of one
#: message per entity (a drain claims many entities per transaction).
DRAIN_THRESHOLD = 32
#: Entities one drain message is expected to cover (one claim batch).
ENTITIES_PER_DRAIN = 64
#: Most drain messages one submission publishes.
MAX_DRAIN_MESSAGES = 16

#: Most entities one ``process_entities`` message names.
ENTITIES_PER_MESSAGE = DRAIN_THRESHOLD


class Nudger(Protocol):
    """Tells workers that entities have due events."""

    def nudge(self, keys: Sequence[EntityKey]) -> None:
        """Publish nudges for ``keys`` (best effort: never raises)."""

    def flush(self, timeout: float = ...) -> bool:
        """Wait until every nudge asked for so far is published; False on timeout."""


class NullNudger:
    """Publishes nothing (workers poll or the relay finds the events)."""

    def nudge(self, keys: Sequence[EntityKey]) -> None:
        """Do nothing."""

    def flush(self, timeout: float = 0.0) -> bool:
        """Nothing is ever queued."""
        return True


class LocalNudger:
    """Wakes this process's drain threads (embedded mode)."""

    def __init__(self) -> None:
        self.wakeup = threading.Event()

    def nudge(self, keys: Sequence[EntityKey]) -> None:
        """Wake the drain loop when there is anything to look at."""
        if keys:
            self.wakeup.set()

    def flush(self, timeout: float = 0.0) -> bool:
        """Wake-ups are immediate."""
        return True


class CeleryNudger:
    """Publishes nudges on ``queue``: ``pystator.process_entity`` for one entity,
    ``pystator.process_entities`` naming up to 32, ``pystator.drain`` for more."""

    def __init__(self, app: Celery, queue: str, observer: FleetObserver | None = None) -> None:
        self.app = app
        self.queue = queue
        self.observer = observer or FleetObserver()

    def nudge(self, keys: Sequence[EntityKey]) -> None:
        """Publish; a broker failure is reported to the observer (the relay re-publishes)."""
        unique = list(dict.fromkeys(keys))
        if not unique:
            return
        sent = 0
        try:
            if len(unique) > DRAIN_THRESHOLD:
                count = min(math.ceil(len(unique) / ENTITIES_PER_DRAIN), MAX_DRAIN_MESSAGES)
                for _ in range(count):
                    sent += self._send(DRAIN_TASK, [])
            elif len(unique) == 1:
                sent += self._send(PROCESS_ENTITY_TASK, list(unique[0]))
            else:
                for start in range(0, len(unique), ENTITIES_PER_MESSAGE):
                    chunk = unique[start : start + ENTITIES_PER_MESSAGE]
                    sent += self._send(PROCESS_ENTITIES_TASK, [[list(key) for key in chunk]])
        except Exception as exc:  # kombu/redis/amqp errors: the relay is the safety net
            self.observer.nudge_failed(f"{type(exc).__name__}: {exc}", len(unique))
            return
        self.observer.nudges_sent(sent, len(unique))

    def flush(self, timeout: float = 0.0) -> bool:
        """Publishing is synchronous: nothing is ever left queued."""
        return True

    def _send(self, task: str, args: list[Any]) -> int:
        self.app.send_task(task, args=args, queue=self.queue, ignore_result=True)
        return 1


#: Seconds :meth:`BackgroundNudger.flush` waits at interpreter exit for unsent nudges.
FLUSH_TIMEOUT_SECONDS = 2.0
#: Seconds the background nudger waits after a first key for more to share its message. A
#: publish costs a few hundred microseconds of CPU; at high submit rates one message then names
#: several entities, and the producer thread keeps most of the CPU.
DEFAULT_LINGER_SECONDS = 0.002


class BackgroundNudger:
    """Publishes through ``inner`` from a background thread, so submitting never waits on the
    broker. Keys arriving within ``linger`` seconds of the first, or while a publish is under
    way, are coalesced (one nudge per entity, several entities per message). A nudge still
    unsent when the process dies is covered by the relay."""

    def __init__(self, inner: Nudger, *, linger: float = DEFAULT_LINGER_SECONDS) -> None:
        self.inner = inner
        self.linger = linger
        self._queue: queue.SimpleQueue[EntityKey | None] = queue.SimpleQueue()
        self._idle = threading.Event()
        self._idle.set()
        self._thread = threading.Thread(target=self._run, name="pystator-nudger", daemon=True)
        self._thread.start()
        atexit.register(self.flush)

    def nudge(self, keys: Sequence[EntityKey]) -> None:
        """Queue ``keys`` for publishing; returns at once."""
        if keys:
            self._idle.clear()
            for key in keys:
                self._queue.put(key)

    def flush(self, timeout: float = FLUSH_TIMEOUT_SECONDS) -> bool:
        """Wait until everything queued so far is published."""
        return self._idle.wait(timeout)

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            keys = [first] if first is not None else []
            deadline = time.monotonic() + self.linger
            while True:
                remaining = deadline - time.monotonic()
                try:
                    if remaining > 0:
                        item = self._queue.get(timeout=remaining)
                    else:
                        item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is not None:
                    keys.append(item)
            self.inner.nudge(list(dict.fromkeys(keys)))
            if self._queue.empty():
                self._idle.set()


__all__ = [
    "BackgroundNudger",
    "CeleryNudger",
    "LocalNudger",
    "Nudger",
    "NullNudger",
]
