"""Drain loops in threads: the embedded mode (SQLite + in-process broker) and the demo.

Each thread claims a batch of entities with due events, applies it, and goes again; when
nothing is due it waits for a local nudge or ``poll_interval``, whichever comes first. A database
outage backs off exponentially. :meth:`DrainThreads.stop` lets in-flight batches finish.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from pystator.fsm_core.backoff import Backoff
from pystator.fsm_core.errors import StoreError
from pystator.logging import get_logger
from pystator.worker.duties import Duties
from pystator.worker.nudge import LocalNudger
from pystator.worker.runtime import Runtime

DEFAULT_POLL_INTERVAL_SECONDS = 0.05
#: Backoff after a database error in a drain loop.
OUTAGE_BACKOFF = Backoff(base_seconds=0.1, max_seconds=5.0)

log = get_logger("pystator.worker")


@dataclass
class DrainThreads:
    """``concurrency`` drain loops plus a relay thread (outbox sweep, due-event nudges)."""

    runtime: Runtime
    concurrency: int = 2
    poll_interval: float = DEFAULT_POLL_INTERVAL_SECONDS
    with_relay: bool = True
    stopping: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)
    duties: Duties = field(init=False)

    def __post_init__(self) -> None:
        self.duties = Duties(self.runtime, relay=self.with_relay, stop=self.stopping)

    def start(self) -> None:
        """Start the threads."""
        for index in range(self.concurrency):
            thread = threading.Thread(
                target=self._loop, name=f"pystator-drain-{index}", daemon=True
            )
            thread.start()
            self.threads.append(thread)
        self.duties.start()

    def stop(self, timeout: float | None = None) -> bool:
        """Ask the loops to finish their current batch; True when all stopped in time."""
        self.stopping.set()
        self._wake()
        for thread in self.threads:
            thread.join(timeout)
        stopped = self.duties.shutdown(timeout)
        return stopped and not any(t.is_alive() for t in self.threads)

    def _wake(self) -> None:
        nudger = self.runtime.nudger
        if isinstance(nudger, LocalNudger):
            nudger.wakeup.set()

    def _wait(self, seconds: float) -> None:
        nudger = self.runtime.nudger
        if isinstance(nudger, LocalNudger):
            if nudger.wakeup.wait(seconds):
                nudger.wakeup.clear()
        else:
            self.stopping.wait(seconds)

    def _loop(self) -> None:
        failures = 0
        processor = self.runtime.processor
        while not self.stopping.is_set():
            try:
                batch = processor.drain_once()
            except StoreError as exc:
                failures += 1
                log.warning("drain_store_error", error=str(exc), failures=failures)
                self.stopping.wait(OUTAGE_BACKOFF.delay(failures))
                continue
            failures = 0
            if not batch.entities:
                self._wait(self.poll_interval)


__all__ = ["DEFAULT_POLL_INTERVAL_SECONDS", "DrainThreads"]
