"""A worker's background duties besides applying events: timers, the relay, the heartbeat,
the retention pruner.

However a worker is started (``pystator worker`` in embedded mode or under Celery, or Celery's own
``celery -A pystator.fleet.app worker``, where a bootstep starts them), it runs the same
:class:`Duties`: the timer backend's loop (poll due timers, hand them over, recovery sweep), the
relay (re-publish stranded nudges, sweep the action outbox) unless switched off, the
heartbeat, and the retention pruner (:mod:`pystator.fleet.retention`). A prefork Celery child
runs the heartbeat only.

**A duty that dies takes its process down.** A background thread that ends with an error would
leave a process that looks alive but no longer fires timers or relays; so the duty is recorded as
dead (the heartbeat reports it), logged at critical, and the process exits with status
:data:`EXIT_DUTY_DIED` for its supervisor (Kubernetes, systemd, compose) to restart it.
"""

from __future__ import annotations

import gc
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from pystator.config.logs import get_logger
from pystator.fleet.liveness import Heartbeat, LivenessLock
from pystator.fleet.relay import Relay
from pystator.fleet.retention import Pruner
from pystator.fleet.runtime import Runtime
from pystator.fleet.startup import retry_at_startup
from pystator.fsm_core.clock import utc_now
from pystator.stores.sql.engine import is_sqlite

#: Exit status of a process whose background duty died.
EXIT_DUTY_DIED = 70

#: ``loop(stop, tick)``: runs until ``stop`` is set, calling ``tick()`` once per iteration.
DutyLoop = Callable[[threading.Event, Callable[[], None]], None]

log = get_logger("pystator.worker")


def freeze_startup_heap() -> None:
    """Exempt everything allocated during start-up from garbage collection.

    A worker's heap after start-up (Celery, SQLAlchemy, kombu, the machines: ~85,000 objects)
    made every full collection pause all its threads for 50-120 ms here, a latency tail for
    every event in flight at that moment. Frozen, those objects are skipped: full collections
    then only look at what the work allocated since.
    """
    gc.collect()
    gc.freeze()


@dataclass
class Duties:
    """The background threads of one worker process."""

    runtime: Runtime
    relay: bool = True
    timers: bool = True
    prune: bool = True  # the retention pruner (main processes only; one prunes at a time)
    fatal: bool = True  # a dying duty ends the process (tests switch this off)
    #: what the relay leaves to a start-up drain of this process (:class:`Relay`'s ``leave``)
    relay_leaves: Callable[[], int | None] = lambda: None
    stop: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)
    _started: bool = field(default=False, init=False)
    liveness: LivenessLock | None = field(default=None, init=False)

    def start(self) -> None:
        """Start the duties' threads (once)."""
        if self._started:
            return
        self._started = True
        runtime = self.runtime
        settings = runtime.settings
        if self.timers:  # this process holds work others must recover if it dies
            _, self.liveness = retry_at_startup(
                settings,
                process=runtime.status.kind,
                step=lambda: LivenessLock(runtime.engine.url, runtime.status.worker_id),
            )
        heartbeat = Heartbeat(
            runtime.engine,
            runtime.status,
            interval=settings.heartbeat_seconds,
            stall_seconds=settings.stall_seconds,
            hung=runtime.outbox.hung_actions,
            extra=lambda: {"nudges": runtime.processor.nudges.as_dict()},
            rollups=runtime.rollups,
        )
        self.spawn(heartbeat.name, lambda stop, _tick: heartbeat.run(stop))
        if self.timers:
            self.spawn(f"timers-{runtime.timers.name}", runtime.timers.run)
        if self.relay:
            self.spawn("relay", Relay(runtime, leave=self.relay_leaves).run)
        if self.prune and self.timers and settings.prune_interval_seconds > 0:
            shared = runtime.engine if is_sqlite(runtime.engine.url) else None
            pruner = Pruner(settings, clock=runtime.processor.clock or utc_now, engine=shared)
            self.spawn("pruner", pruner.run)

    def spawn(self, name: str, loop: DutyLoop) -> threading.Thread:
        """Run ``loop`` in a supervised daemon thread named ``pystator-<name>``."""
        thread = threading.Thread(
            target=self._supervised, args=(name, loop), name=f"pystator-{name}", daemon=True
        )
        thread.start()
        self.threads.append(thread)
        return thread

    def shutdown(self, timeout: float | None = None) -> bool:
        """Ask the threads to stop; True when all stopped within ``timeout``."""
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout)
        if self.liveness is not None:
            self.liveness.release()
        return not any(t.is_alive() for t in self.threads)

    def _supervised(self, name: str, loop: DutyLoop) -> None:
        status = self.runtime.status
        status.tick(name)
        try:
            loop(self.stop, lambda: status.tick(name))
        except BaseException as exc:  # any death of a duty is fatal to the process
            self.died(name, exc)
            return
        if not self.stop.is_set():
            self.died(name, RuntimeError("the loop returned while the worker was running"))

    def died(self, name: str, exc: BaseException) -> None:
        """Record a dead duty; unless ``fatal`` is off, end the process for a restart."""
        error = f"{type(exc).__name__}: {exc}"
        self.runtime.status.died(name, error)
        log.critical("duty_died", duty=name, error=error, exit_status=EXIT_DUTY_DIED)
        if self.fatal:
            os._exit(EXIT_DUTY_DIED)


__all__ = ["EXIT_DUTY_DIED", "Duties", "DutyLoop", "freeze_startup_heap"]
