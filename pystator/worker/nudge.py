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

PROCESS_ENTITY_TASK = "pystator.process_entity"
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
    """Publishes ``pystator.process_entity`` / ``pystator.drain`` messages on ``queue``."""

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
            else:
                for machine, entity_id in unique:
                    self._send(PROCESS_ENTITY_TASK, [machine, entity_id])
        except Exception as exc:  # kombu/redis/amqp errors: the relay is the safety net
            log.warning("nudge_failed", error=f"{type(exc).__name__}: {exc}", entities=len(unique))

    def _send(self, task: str, args: list[Any]) -> None:
        self.app.send_task(task, args=args, queue=self.queue, ignore_result=True)


#: Seconds :meth:`BackgroundNudger.flush` waits at interpreter exit for unsent nudges.
FLUSH_TIMEOUT_SECONDS = 2.0


class BackgroundNudger:
    """Publishes through ``inner`` from a background thread, so submitting never waits on the
    broker. Keys queued meanwhile are coalesced (one nudge per entity). A nudge still unsent
    when the process dies is covered by the relay."""

    def __init__(self, inner: Nudger) -> None:
        self.inner = inner
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
            while True:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is not None:
                    keys.append(item)
            self.inner.nudge(list(dict.fromkeys(keys)))
            if self._queue.empty():
                self._idle.set()


__all__ = ["BackgroundNudger", "CeleryNudger", "LocalNudger", "Nudger", "NullNudger"]
