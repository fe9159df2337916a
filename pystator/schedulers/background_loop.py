"""An asyncio event loop running in a daemon thread, for timers armed from synchronous code.

The loop is created at once (so callbacks can be queued on it with ``call_soon_threadsafe``
before the thread gets to run it) and runs under :class:`asyncio.Runner` in its own thread. On
:meth:`BackgroundLoop.stop` the runner cancels every task still pending, shuts down async
generators and the default executor, and closes the loop: nothing is left to warn at exit.
"""

from __future__ import annotations

import asyncio
import logging
import threading

JOIN_TIMEOUT_SECONDS = 10.0

LOGGER = logging.getLogger("pystator.schedulers.asyncio")


class BackgroundLoop:
    """One event loop served by one daemon thread until :meth:`stop`."""

    def __init__(self, name: str) -> None:
        self._runner = asyncio.Runner(loop_factory=asyncio.new_event_loop)
        self.loop: asyncio.AbstractEventLoop = self._runner.get_loop()
        self._stopping = asyncio.Event()
        self.thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        """Ask the loop to stop and wait for its thread (it only asks when called from it)."""
        if not self.loop.is_closed():
            try:
                self.loop.call_soon_threadsafe(self._stopping.set)
            except RuntimeError:  # the loop closed between the check and the call
                LOGGER.debug("background timer loop %s already closed", self.thread.name)
        if threading.current_thread() is self.thread:
            return
        self.thread.join(JOIN_TIMEOUT_SECONDS)
        if self.thread.is_alive():
            LOGGER.warning(
                "background timer loop %s did not stop within %ss",
                self.thread.name,
                JOIN_TIMEOUT_SECONDS,
            )

    def _serve(self) -> None:
        try:
            self._runner.run(self._stopping.wait())
        finally:
            self._runner.close()


__all__ = ["JOIN_TIMEOUT_SECONDS", "BackgroundLoop"]
