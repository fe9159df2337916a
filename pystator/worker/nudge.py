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
from typing import TYPE_CHECKING, Any, Protocol

from pystator.logging import get_logger
from pystator.stores.sql.event_queries import EntityKey

if TYPE_CHECKING:
    from celery import Celery

#: Above this many entities in one submission, publish ``drain`` messages instead of one
#: message per entity (a drain claims many entities per transaction).
DRAIN_THRESHOLD = 32
#: Entities one drain message is expected to cover (one claim batch).
ENTITIES_PER_DRAIN = 64
#: Most drain messages one submission publishes.
MAX_DRAIN_MESSAGES = 16

#: Most entities one ``process_entities`` message names.
ENTITIES_PER_MESSAGE = DRAIN_THRESHOLD

PROCESS_ENTITY_TASK = "pystator.process_entity"
PROCESS_ENTITIES_TASK = "pystator.process_entities"
DRAIN_TASK = "pystator.drain"

log = get_logger("pystator.nudge")


class Nudger(Protocol):
    """Tells workers that entities have due events."""

    def nudge(self, keys: Sequence[EntityKey]) -> None:
        """Publish nudges for ``keys`` (best effort: never raises)."""


class NullNudger:
    """Publishes nothing (workers poll or the relay finds the events)."""

    def nudge(self, keys: Sequence[EntityKey]) -> None:
        """Do nothing."""


class LocalNudger:
    """Wakes this process's drain threads (embedded mode)."""

    def __init__(self) -> None:
        self.wakeup = threading.Event()

    def nudge(self, keys: Sequence[EntityKey]) -> None:
        """Wake the drain loop when there is anything to look at."""
        if keys:
            self.wakeup.set()


class CeleryNudger:
    """Publishes nudges on ``queue``: ``pystator.process_entity`` for one entity,
    ``pystator.process_entities`` naming up to 32, ``pystator.drain`` for more."""

    def __init__(self, app: Celery, queue: str) -> None:
        self.app = app
        self.queue = queue

    def nudge(self, keys: Sequence[EntityKey]) -> None:
        """Publish; a broker failure is logged (the relay re-publishes), not raised."""
        unique = list(dict.fromkeys(keys))
        if not unique:
            return
        try:
            if len(unique) > DRAIN_THRESHOLD:
                count = min(math.ceil(len(unique) / ENTITIES_PER_DRAIN), MAX_DRAIN_MESSAGES)
                for _ in range(count):
                    self._send(DRAIN_TASK, [])
            elif len(unique) == 1:
                self._send(PROCESS_ENTITY_TASK, list(unique[0]))
            else:
                for start in range(0, len(unique), ENTITIES_PER_MESSAGE):
                    chunk = unique[start : start + ENTITIES_PER_MESSAGE]
                    self._send(PROCESS_ENTITIES_TASK, [[list(key) for key in chunk]])
        except Exception as exc:  # kombu/redis/amqp errors: the relay is the safety net
            log.warning("nudge_failed", error=f"{type(exc).__name__}: {exc}", entities=len(unique))

    def _send(self, task: str, args: list[Any]) -> None:
        self.app.send_task(task, args=args, queue=self.queue, ignore_result=True)


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


__all__ = ["BackgroundNudger", "CeleryNudger", "LocalNudger", "Nudger", "NullNudger"]
