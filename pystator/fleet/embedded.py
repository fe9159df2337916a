"""Drain loops in threads: the embedded mode (SQLite + in-process broker) and the demo.

Each thread claims a batch of entities with due events, applies it, and goes again; when
nothing is due it waits for a local nudge or ``poll_interval``, whichever comes first. A database
outage backs off exponentially. :meth:`DrainThreads.stop` lets in-flight batches finish.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from pystator.config.logs import get_logger
from pystator.fleet.duties import Duties
from pystator.fleet.nudge import LocalNudger
from pystator.fleet.runtime import Runtime
from pystator.fsm_core.backoff import Backoff
from pystator.fsm_core.errors import StoreError

#: Backoff after a database error in a drain loop.
OUTAGE_BACKOFF = Backoff(base_seconds=0.1, max_seconds=5.0)

log = get_logger("pystator.worker")


@dataclass
class DrainThreads:
    """``concurrency`` drain loops plus the worker's duties (timers, relay, heartbeat), each a
    supervised thread: one that dies ends the process (see :mod:`pystator.fleet.duties`)."""

    runtime: Runtime
    concurrency: int = 2
    with_relay: bool = True
    fatal: bool = True
    stopping: threading.Event = field(default_factory=threading.Event)
    duties: Duties = field(init=False)

    def __post_init__(self) -> None:
        self.runtime.status.kind = "embedded"
        self.duties = Duties(
            self.runtime, relay=self.with_relay, fatal=self.fatal, stop=self.stopping
        )

    @property
    def poll_interval(self) -> float:
        """Seconds an idle loop waits for a local nudge before looking again
        (``PYSTATOR_WORKER_POLL_INTERVAL_MS``)."""
        return self.runtime.settings.worker_poll_interval_ms / 1000

    def start(self) -> None:
        """Start the threads."""
        for index in range(self.concurrency):
            self.duties.spawn(f"drain-{index}", self._loop)
        self.duties.start()
        log.info("worker_ready", mode="embedded")

    def drain(self, timeout: float) -> bool:
        """Shut the worker down: let in-flight batches finish (up to ``timeout`` seconds), then
        close the runtime. True when every thread stopped in time."""
        log.info("worker_draining", timeout_seconds=timeout)
        finished = self.stop(timeout)
        self.runtime.close()
        log.info("worker_stopped", drained=finished)
        return finished

    def stop(self, timeout: float | None = None) -> bool:
        """Ask the loops to finish their current batch; True when all stopped in time."""
        self.stopping.set()
        self._wake()
        return self.duties.shutdown(timeout)

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

    def _loop(self, stop: threading.Event, tick: Callable[[], None]) -> None:
        failures = 0
        processor = self.runtime.processor
        status = self.runtime.status
        while not stop.is_set():
            tick()
            try:
                with status.working():
                    batch = processor.drain_once()
            except StoreError as exc:
                failures += 1
                log.warning("drain_store_error", error=str(exc), failures=failures)
                stop.wait(OUTAGE_BACKOFF.delay(failures))
                continue
            failures = 0
            status.applied(len(batch.results))
            if not batch.entities:
                self._wait(self.poll_interval)


__all__ = ["DrainThreads"]
