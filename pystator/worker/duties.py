"""A worker's background duties besides applying events: firing timers and the relay.

However a worker is started (``pystator worker`` in embedded mode or under Celery, or Celery's own
``celery -A pystator.worker.app worker``), it runs the same :class:`Duties`: the timer backend's
loop (poll due timers, hand them over, recovery sweep) and, unless switched off, the relay
(re-publish stranded nudges, sweep the action outbox).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from pystator.logging import get_logger
from pystator.worker.relay import Relay
from pystator.worker.runtime import Runtime

log = get_logger("pystator.worker")


@dataclass
class Duties:
    """The background threads of one worker process."""

    runtime: Runtime
    relay: bool = True
    stop: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> None:
        """Start the threads (once)."""
        if self.threads:
            return
        timers = self.runtime.timers
        self._spawn(f"pystator-timers-{timers.name}", timers.run)
        if self.relay:
            self._spawn("pystator-relay", Relay(self.runtime).run)

    def shutdown(self, timeout: float | None = None) -> bool:
        """Ask the threads to stop; True when all stopped within ``timeout``."""
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout)
        return not any(t.is_alive() for t in self.threads)

    def _spawn(self, name: str, loop: Callable[[threading.Event], None]) -> None:
        thread = threading.Thread(target=loop, args=(self.stop,), name=name, daemon=True)
        thread.start()
        self.threads.append(thread)


__all__ = ["Duties"]
