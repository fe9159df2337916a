"""Health checks of the fleet: is a worker alive and moving (liveness), can it work (readiness).

``pystator health`` and the HTTP API's readiness route call these. Liveness looks at the
heartbeat rows of one host's worker processes (:mod:`pystator.fleet.liveness`); a process is
unhealthy when

- it has no heartbeat, or its last one is older than the stall window (process hung, or its
  heartbeat thread died);
- it reports a stall itself: work in flight longer than the window, a duty that stopped ticking
  or died, an action thread stuck that long;
- events have been due for longer than the window and it made no progress in that time.

Readiness checks that the database answers (and has the fleet's schema) and the broker accepts
a connection.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from kombu.connection import Connection as BrokerConnection
from sqlalchemy.engine import Engine

from pystator.config.settings import Settings
from pystator.fleet.celery_config import is_memory_broker
from pystator.fsm_core.clock import Clock, utc_now
from pystator.fsm_core.errors import StoreError
from pystator.stores.sql import heartbeat_queries
from pystator.stores.sql.connections import dispose, fleet_engine
from pystator.stores.sql.db_clock import read_now
from pystator.stores.sql.engine import translate_errors

#: Seconds the readiness check waits for the broker.
BROKER_TIMEOUT_SECONDS = 3.0
#: A heartbeat older than this many intervals is stale, whatever the stall window.
STALE_BEATS = 3


@dataclass(frozen=True, slots=True, kw_only=True)
class HealthReport:
    """The verdict of a check: healthy when ``problems`` is empty."""

    check: str
    problems: list[str] = field(default_factory=list)
    workers: list[dict[str, Any]] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        """True when nothing is wrong."""
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly."""
        return {
            "check": self.check,
            "healthy": self.healthy,
            "problems": list(self.problems),
            "workers": [_jsonable(w) for w in self.workers],
        }


def check_liveness(
    engine: Engine,
    *,
    host: str | None = None,
    stall_seconds: float,
    heartbeat_seconds: float,
    clock: Clock | None = None,
) -> HealthReport:
    """Liveness of the worker processes of ``host`` (default: this machine, the pod), judged by
    the database's clock (which stamped the heartbeats), or ``clock``."""
    local = host is None or host == socket.gethostname()
    host = host or socket.gethostname()
    window = timedelta(seconds=stall_seconds)
    with translate_errors("health"), engine.connect() as conn:
        now = read_now(conn, clock)
        rows = heartbeat_queries.heartbeats(conn, host=host)
        waiting = heartbeat_queries.due_backlog(conn, now, older_than=now - window)
    live = [r for r in rows if r["stopped_at"] is None and (not local or _pid_alive(r["pid"]))]
    if not live:
        return HealthReport(check="liveness", problems=[f"no running worker on host {host!r}"])
    stale_after = max(window, timedelta(seconds=STALE_BEATS * heartbeat_seconds))
    problems: list[str] = []
    for row in live:
        name = f"{row['kind']} pid {row['pid']}"
        age = now - row["beat_at"]
        if age > stale_after:
            problems.append(f"{name}: no heartbeat for {age.total_seconds():.0f} s")
        problems += [f"{name}: {stall}" for stall in row["info"].get("stalls", [])]
        idle = now - row["progress_at"]
        if waiting and row["kind"] != "child" and idle > window:
            problems.append(
                f"{name}: no progress for {idle.total_seconds():.0f} s while {waiting} events "
                f"have been due for more than {stall_seconds:g} s"
            )
    return HealthReport(check="liveness", problems=problems, workers=live)


def check_readiness(settings: Settings, *, engine: Engine | None = None) -> HealthReport:
    """Can this process work: the database answers with the fleet's tables, the broker accepts
    a connection (nothing to check for the in-process broker)."""
    problems: list[str] = []
    own = engine is None
    engine = engine or fleet_engine(settings.database_url, pool_size=1)
    try:
        with translate_errors("readiness"), engine.connect() as conn:
            heartbeat_queries.due_backlog(conn, utc_now())
    except StoreError as exc:
        problems.append(f"database: {exc}")
    finally:
        if own:
            dispose(engine)
    if not is_memory_broker(settings.broker_url):
        problems += _broker_problems(settings.broker_url)
    return HealthReport(check="readiness", problems=problems)


def _broker_problems(url: str) -> list[str]:
    try:
        with BrokerConnection(url, connect_timeout=BROKER_TIMEOUT_SECONDS) as broker:  # type: ignore[no-untyped-call]
            broker.ensure_connection(max_retries=1, timeout=BROKER_TIMEOUT_SECONDS)
    except Exception as exc:  # kombu/amqp/redis errors all mean "not reachable"
        return [f"broker: {type(exc).__name__}: {exc}"]
    return []


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in row.items()}


__all__ = ["HealthReport", "check_liveness", "check_readiness"]
