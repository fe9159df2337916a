"""``PYSTATOR_SCHEDULER=redis``: a Redis sorted set notices the fleet's due timers.

The ``worker_timers`` table keeps every armed timer; after commit the timer also goes into a
:class:`~pystator.schedulers.redis_scheduler.RedisScheduler`. Every worker's poller claims due
timers there under a lease and fires them by id; a worker killed holding claims loses nothing (the
lease expires, or the recovery sweep fires the row).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from pystator.config.logs import get_logger
from pystator.fsm_core.clock import now_of
from pystator.fsm_core.errors import SchedulerError, StoreError
from pystator.fsm_core.records import ArmedTimer
from pystator.schedulers.fleet_timers import (
    DEFAULT_POLL_SECONDS,
    DEFAULT_RECOVERY_SECONDS,
    ERROR_PAUSE_SECONDS,
    SweepingTimerSink,
    TimerFiring,
    without_cancelled,
)
from pystator.schedulers.redis_scheduler import RedisScheduler

log = get_logger("pystator.timers")


class RedisTimerSink(SweepingTimerSink):
    """The table keeps the timers; a Redis sorted set tells the pollers when they are due."""

    name = "redis"

    def __init__(
        self,
        firing: TimerFiring,
        scheduler: RedisScheduler,
        *,
        poll_interval: float = DEFAULT_POLL_SECONDS,
        recovery: timedelta = timedelta(seconds=DEFAULT_RECOVERY_SECONDS),
    ) -> None:
        super().__init__(firing, poll_interval=poll_interval, recovery=recovery)
        self.scheduler = scheduler

    def after_commit(self, arm: Sequence[ArmedTimer], cancel: Sequence[ArmedTimer]) -> None:
        """Hand the committed timers to Redis (a failure is logged: the sweep covers it)."""
        try:
            self.scheduler.arm(without_cancelled(arm, cancel))
            self.scheduler.cancel(cancel)
        except SchedulerError as exc:
            log.warning("timer_handoff_failed", scheduler=self.name, error=str(exc))

    def poll_once(self) -> int:
        """Claim due timers in Redis and fire them; then, at most every second, the sweep.

        Redis claims by this host's clock, the database decides by its own: a timer claimed
        early (this host runs ahead) is put back, due after the time the database says is left.
        """
        claimed = self.scheduler.claim_due()
        fired = 0
        if claimed:
            ids = [t.timer_id for t in claimed]
            firing = self.require_firing()
            try:
                taken = {t.timer_id for t in firing.fire_ids(ids)}
            except StoreError:
                retry_at = now_of(firing.clock) + timedelta(seconds=ERROR_PAUSE_SECONDS)
                self.scheduler.release(ids, due_at=retry_at)
                raise
            fired = len(taken)
            early = (
                firing.not_yet_due([i for i in ids if i not in taken]) if fired < len(ids) else {}
            )
            for timer_id, wait in early.items():
                self.scheduler.release([timer_id], due_at=now_of(firing.clock) + wait)
            self.scheduler.ack([i for i in ids if i not in early])
        self.sweep_due()
        return max(fired, len(claimed))

    def close(self) -> None:
        """Close the Redis client."""
        self.scheduler.close()


__all__ = ["RedisTimerSink"]
