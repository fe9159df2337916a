"""``PYSTATOR_SCHEDULER=celery``: the fleet's timers as Celery ETA tasks, published near due time.

Timers due within ``horizon`` are published right after commit; later ones wait in the
``worker_timers`` table until a publisher pass hands them over, so no worker holds a message for
hours (memory, broker visibility timeouts). A redelivered ETA task finds no row and does nothing.
What a message looks like is the worker's business: this sink is handed a :data:`EtaPublisher`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from pystator.config.logs import get_logger
from pystator.fsm_core.clock import now_of
from pystator.fsm_core.records import ArmedTimer
from pystator.schedulers.fleet_timers import (
    DEFAULT_RECOVERY_SECONDS,
    SWEEP_INTERVAL_SECONDS,
    SweepingTimerSink,
    TimerFiring,
    without_cancelled,
)
from pystator.stores.sql import timer_queries
from pystator.stores.sql.connections import transaction
from pystator.stores.sql.db_clock import read_now
from pystator.stores.sql.engine import translate_errors

DEFAULT_HORIZON_SECONDS = 60.0
#: Timers due within one such slot share one ETA task (its ETA: the slot's latest due time).
ETA_SLOT = timedelta(milliseconds=10)

#: Publishes one ETA message that fires ``timer_ids`` at ``eta`` (raises on a broker failure).
EtaPublisher = Callable[[list[str], datetime], None]

log = get_logger("pystator.timers")


class CeleryTimerSink(SweepingTimerSink):
    """The table keeps the timers; Celery ETA messages fire them at their due time."""

    name = "celery"

    def __init__(
        self,
        firing: TimerFiring,
        publish: EtaPublisher,
        *,
        horizon: timedelta = timedelta(seconds=DEFAULT_HORIZON_SECONDS),
        recovery: timedelta = timedelta(seconds=DEFAULT_RECOVERY_SECONDS),
    ) -> None:
        super().__init__(firing, poll_interval=SWEEP_INTERVAL_SECONDS, recovery=recovery)
        self.publish_eta = publish
        self.horizon = horizon

    def handed_until(self, now: datetime) -> datetime | None:
        """Timers due within the horizon are published right after commit."""
        return now + self.horizon

    def after_commit(self, arm: Sequence[ArmedTimer], cancel: Sequence[ArmedTimer]) -> None:
        """Publish the committed timers due within the horizon (cancelling needs nothing:
        the ETA task of a cancelled timer finds no row)."""
        # Arming marked the timers due within the horizon by the database's clock as handed;
        # this host's clock may differ, so look a horizon further: a timer published here and
        # not marked handed is published once more by the hand-off (its second message finds
        # no row), while one marked and not published would wait for the sweep.
        until = now_of(self.require_firing().clock) + 2 * self.horizon
        soon = [t for t in without_cancelled(arm, cancel) if t.due_at and t.due_at <= until]
        self.publish(soon)

    def publish(self, timers: Sequence[ArmedTimer]) -> int:
        """Send ETA messages, one per 10 ms slot of due times (a broker consumer takes few ETA
        messages at a time, so one message per timer would make a burst of timers late);
        a broker failure is logged (the sweep covers it). Returns how many timers were sent."""
        sent = 0
        try:
            for eta, ids in eta_slots(timers):
                self.publish_eta(ids, eta)
                sent += len(ids)
        except Exception as exc:  # kombu/amqp/redis errors: the sweep fires these rows later
            log.warning("timer_handoff_failed", scheduler=self.name, error=str(exc), sent=sent)
        return sent

    def poll_once(self) -> int:
        """Hand over timers that came within the horizon, then run the recovery sweep."""
        firing = self.require_firing()
        handed = 0
        while True:
            with translate_errors("hand off timers"), transaction(firing.engine) as conn:
                now = read_now(conn, firing.clock)
                batch = timer_queries.hand_off(conn, now + self.horizon, now, firing.batch_size)
            handed += self.publish(batch)
            if len(batch) < firing.batch_size:
                break
        return handed + self.sweep_due()


def eta_slots(timers: Sequence[ArmedTimer]) -> list[tuple[datetime, list[str]]]:
    """Group timers into :data:`ETA_SLOT`-wide slots of due time: (latest due, timer ids)."""
    slots: dict[int, list[ArmedTimer]] = {}
    width = ETA_SLOT.total_seconds()
    for timer in timers:
        if timer.due_at is not None:
            slots.setdefault(int(timer.due_at.timestamp() // width), []).append(timer)
    return [
        (max(t.due_at for t in group if t.due_at is not None), [t.timer_id for t in group])
        for _slot, group in sorted(slots.items())
    ]


__all__ = ["DEFAULT_HORIZON_SECONDS", "ETA_SLOT", "CeleryTimerSink", "EtaPublisher", "eta_slots"]
