"""``Worker``: a worker started from Python with asyncio, inside an application's own process.

It is ``pystator worker``'s embedded mode in a class: the drain threads of
:class:`~pystator.fleet.embedded.DrainThreads` (with the timers, relay and heartbeat duties) on a
:class:`~pystator.fleet.runtime.Runtime` built from the settings. The threads do the work; the
async methods only start them, wait, and drain them off the event loop. With a real broker set
(``PYSTATOR_BROKER_URL``) the worker still finds its work by polling the table, and what it
submits nudges the Celery workers too.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from pystator.config.logs import get_logger
from pystator.config.settings import Settings, load_settings
from pystator.fleet.composition import prepare_database
from pystator.fleet.config import WorkerConfig
from pystator.fleet.embedded import DrainThreads
from pystator.fleet.observer import FleetObserver
from pystator.fleet.runtime import Runtime
from pystator.fleet.startup import wait_for_database
from pystator.fsm_core.errors import ConfigurationError

#: The signals :meth:`Worker.run` turns into a shutdown (in the main thread).
SHUTDOWN_SIGNALS = (signal.SIGTERM, signal.SIGINT)

log = get_logger("pystator.worker")


class Worker:
    """Applies submitted events in this process until shut down.

    ``guards`` and ``actions`` are the registries ``--app module:factory`` would give (bound to
    every machine, including the database registry's); unset, ``PYSTATOR_APP``'s are used.
    ``settings`` completes ``config`` (default: the environment's).
    """

    def __init__(
        self,
        config: WorkerConfig | None = None,
        *,
        guards: Any | None = None,
        actions: Any | None = None,
        observers: Sequence[FleetObserver] = (),
        settings: Settings | None = None,
    ) -> None:
        self.config = config or WorkerConfig()
        self.settings = self.config.apply(settings or load_settings())
        self.guards = guards
        self.actions = actions
        self.observers = list(observers)
        self.runtime: Runtime | None = None
        self.drained: bool | None = None  # after shutdown: did in-flight work finish in time
        self._threads: DrainThreads | None = None
        self._stopping = asyncio.Event()
        self._drain: asyncio.Future[bool] | None = None

    async def start(self) -> None:
        """Prepare the database (SQLite: create or upgrade the schema), load the machines,
        and start the drain threads. Calling it again does nothing."""
        if self._drain is not None:
            raise ConfigurationError("this Worker was shut down; build a new one")
        if self._threads is None:
            self._threads = await asyncio.to_thread(self._start)

    async def run(self) -> None:
        """Start if needed, then wait until :meth:`shutdown` is called (or, in the main
        thread, SIGTERM or SIGINT arrives), and drain: in-flight batches finish."""
        await self.start()
        with self._signals():
            await self._stopping.wait()
        await self._finish()

    async def shutdown(self) -> None:
        """Stop taking work, let in-flight batches finish (up to ``drain_timeout_s``), close
        the connections; returns when done. A :meth:`run` waiting returns too."""
        self._stopping.set()
        await self._finish()

    def _start(self) -> DrainThreads:
        settings = self.settings
        wait_for_database(settings, process="worker")
        prepare_database(settings)
        concurrency = settings.worker_concurrency
        runtime = Runtime.from_settings(
            settings,
            concurrency=concurrency,
            observers=self.observers,
            guards=self.guards,
            actions=self.actions,
        )
        runtime.serve_as_worker(concurrency=concurrency, pool="threads", queue=runtime.queue)
        log.info(
            "worker_starting", machines=list(runtime.machines.names()), concurrency=concurrency
        )
        threads = DrainThreads(runtime, concurrency=concurrency)
        try:
            threads.start()
        except BaseException:
            threads.drain(0)
            raise
        self.runtime = runtime
        return threads

    async def _finish(self) -> None:
        threads = self._threads
        if threads is None:
            return
        if self._drain is None:
            timeout = self.settings.worker_drain_timeout_s
            self._drain = asyncio.ensure_future(asyncio.to_thread(threads.drain, timeout))
        self.drained = await asyncio.shield(self._drain)

    @contextmanager
    def _signals(self) -> Iterator[None]:
        """SIGTERM/SIGINT request a shutdown while inside; a second one, after the handlers are
        gone, acts as usual (SIGINT: KeyboardInterrupt)."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        loop = asyncio.get_running_loop()
        for signum in SHUTDOWN_SIGNALS:
            loop.add_signal_handler(signum, self._stopping.set)
        try:
            yield
        finally:
            for signum in SHUTDOWN_SIGNALS:
                loop.remove_signal_handler(signum)


__all__ = ["SHUTDOWN_SIGNALS", "Worker"]
