"""Durable timers in Redis: a sorted set of due times, claimed in leased batches by Lua scripts.

Three keys under ``prefix`` (for Redis Cluster put a hash tag in the prefix, e.g.
``"{pystator:timers}"``, so that the scripts' keys share one slot):

- ``<prefix>:pending`` -- sorted set, member = timer id, score = due time (epoch ms);
- ``<prefix>:claimed`` -- sorted set, member = timer id, score = lease expiry (epoch ms);
- ``<prefix>:payloads`` -- hash, timer id -> the timer as JSON.

The claim script first returns expired leases to pending (a poller that died between claim and
ack loses nothing), then moves up to ``batch_size`` due timers to claimed and returns their
payloads. Any number of pollers, in any number of processes, can claim at once: no leader, and no
timer is handed out twice within a lease. A timer is acked (removed) after its ``fire`` callback
returns; a callback that raises is logged and the timer is released to fire again after a short
delay. Delivery is at least once: a callback that outlives the lease may see its timer fired
again elsewhere (the step drops a timer whose state entry no longer holds). Redis errors are
translated into :class:`~pystator.fsm_core.errors.SchedulerError` in :func:`translate_errors`.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import threading
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any, TypeVar

try:
    import redis
    from redis.typing import EncodableT
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise ImportError("the Redis scheduler needs: pip install 'pystator[redis]'") from exc

from pystator.fsm_core.clock import Clock, utc_now
from pystator.fsm_core.errors import SchedulerError
from pystator.fsm_core.records import ArmedTimer
from pystator.schedulers.base import FireCallback, ScheduleMethod
from pystator.schedulers.payload import decode_timer, encode_timer, to_millis

DEFAULT_PREFIX = "pystator:timers"
DEFAULT_LEASE_SECONDS = 30.0
DEFAULT_BATCH_SIZE = 100
DEFAULT_POLL_INTERVAL_SECONDS = 0.05
DEFAULT_RETRY_DELAY_SECONDS = 1.0
SOCKET_TIMEOUT_SECONDS = 10.0
JOIN_TIMEOUT_SECONDS = 30.0
ERROR_PAUSE_SECONDS = 1.0  # between polls while Redis fails, so an outage does not flood the log

LOGGER = logging.getLogger("pystator.schedulers.redis")

_T = TypeVar("_T")

# KEYS: pending, claimed, payloads. ARGV: now (ms), lease expiry (ms), batch size.
# Returns a flat list: id1, payload1, id2, payload2, ...
CLAIM_SCRIPT = """
local limit = tonumber(ARGV[3])
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1], 'WITHSCORES', 'LIMIT', 0, limit)
for i = 1, #expired, 2 do
  redis.call('ZREM', KEYS[2], expired[i])
  redis.call('ZADD', KEYS[1], 'NX', expired[i + 1], expired[i])
end
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, limit)
local out = {}
for _, id in ipairs(due) do
  redis.call('ZREM', KEYS[1], id)
  local payload = redis.call('HGET', KEYS[3], id)
  if payload then
    redis.call('ZADD', KEYS[2], ARGV[2], id)
    out[#out + 1] = id
    out[#out + 1] = payload
  end
end
return out
"""

# KEYS: pending, claimed, payloads. ARGV: ids. Keeps the payload of a timer re-armed meanwhile.
ACK_SCRIPT = """
local n = 0
for _, id in ipairs(ARGV) do
  n = n + redis.call('ZREM', KEYS[2], id)
  if not redis.call('ZSCORE', KEYS[1], id) then
    redis.call('HDEL', KEYS[3], id)
  end
end
return n
"""

# KEYS: pending, claimed. ARGV: due time (ms), ids. Only timers still claimed go back (a timer
# cancelled meanwhile stays cancelled; one re-armed meanwhile keeps its new due time).
RELEASE_SCRIPT = """
local n = 0
for i = 2, #ARGV do
  if redis.call('ZREM', KEYS[2], ARGV[i]) == 1 then
    redis.call('ZADD', KEYS[1], 'NX', ARGV[1], ARGV[i])
    n = n + 1
  end
end
return n
"""


@contextmanager
def translate_errors(action: str) -> Iterator[None]:
    """Translate redis-py errors raised inside the block into :class:`SchedulerError`."""
    try:
        yield
    except redis.RedisError as exc:
        raise SchedulerError(f"Redis scheduler could not {action}: {exc}") from exc


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


async def _await(awaitable: Awaitable[_T]) -> _T:
    return await awaitable


class RedisScheduler(ScheduleMethod):
    """A :class:`~pystator.schedulers.base.Scheduler` whose timers live in Redis.

    ``url_or_client`` is a Redis URL (the scheduler then owns and closes the client) or a
    ``redis.Redis`` client (which stays the caller's). ``start(fire)`` runs a daemon poller
    thread; :meth:`claim_due`, :meth:`ack`, :meth:`release` and :meth:`poll_once` drive the same
    machinery synchronously (tests pass ``now`` or a fake ``clock`` instead of sleeping).
    """

    def __init__(
        self,
        url_or_client: str | redis.Redis,
        *,
        prefix: str = DEFAULT_PREFIX,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        batch_size: int = DEFAULT_BATCH_SIZE,
        poll_interval: float = DEFAULT_POLL_INTERVAL_SECONDS,
        retry_delay: float = DEFAULT_RETRY_DELAY_SECONDS,
        clock: Clock = utc_now,
    ) -> None:
        if lease_seconds <= 0 or batch_size < 1 or poll_interval <= 0 or retry_delay < 0:
            raise SchedulerError(
                "RedisScheduler needs lease_seconds > 0, batch_size >= 1, poll_interval > 0 "
                "and retry_delay >= 0"
            )
        self._owns_client = isinstance(url_or_client, str)
        self.client: redis.Redis = (
            redis.Redis.from_url(url_or_client, socket_timeout=SOCKET_TIMEOUT_SECONDS)
            if isinstance(url_or_client, str)
            else url_or_client
        )
        self.prefix = prefix
        self.lease = timedelta(seconds=lease_seconds)
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.retry_delay = timedelta(seconds=retry_delay)
        self.clock = clock
        self._pending, self._claimed, self._payloads = (
            f"{prefix}:pending",
            f"{prefix}:claimed",
            f"{prefix}:payloads",
        )
        self._claim = self.client.register_script(CLAIM_SCRIPT)
        self._ack = self.client.register_script(ACK_SCRIPT)
        self._release = self.client.register_script(RELEASE_SCRIPT)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._fire: FireCallback | None = None
        self._closed = False

    # --- the Scheduler protocol ----------------------------------------------------------------

    def start(self, fire: FireCallback) -> None:
        """Start the poller thread delivering due timers to ``fire`` (idempotent)."""
        if self._closed:
            raise SchedulerError("RedisScheduler is closed")
        if self._thread is not None:
            if fire != self._fire:
                raise SchedulerError(
                    "this RedisScheduler already delivers to another callback: give each "
                    "Orchestrator its own RedisScheduler (and its own prefix)"
                )
            return
        self._fire = fire
        self._thread = threading.Thread(
            target=self._run, args=(fire,), name=f"pystator-timers:{self.prefix}", daemon=True
        )
        self._thread.start()

    def arm(self, timers: Sequence[ArmedTimer]) -> None:
        """Store the timers' payloads and due times in one transaction (idempotent per id)."""
        if not timers:
            return
        payloads: dict[EncodableT, EncodableT] = {t.timer_id: encode_timer(t) for t in timers}
        scores = {t.timer_id: to_millis(t.due_at) for t in timers if t.due_at is not None}
        with translate_errors("arm timers"):
            pipe = self.client.pipeline(transaction=True)
            pipe.hset(self._payloads, mapping=payloads)
            pipe.zadd(self._pending, scores)
            pipe.execute()

    def cancel(self, timers: Sequence[ArmedTimer]) -> None:
        """Remove the timers wherever they are (unknown or fired ids are ignored)."""
        ids = [t.timer_id for t in timers]
        if not ids:
            return
        with translate_errors("cancel timers"):
            pipe = self.client.pipeline(transaction=True)
            pipe.zrem(self._pending, *ids)
            pipe.zrem(self._claimed, *ids)
            pipe.hdel(self._payloads, *ids)
            pipe.execute()

    async def aclose(self) -> None:
        """Stop the poller (it releases the timers it has not fired) and close an owned client."""
        await asyncio.to_thread(self.close)

    def close(self) -> None:
        """Synchronous :meth:`aclose` (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        if self._thread is not None:
            self._thread.join(JOIN_TIMEOUT_SECONDS)
            if self._thread.is_alive():
                LOGGER.warning(
                    "timer poller %s did not stop within %ss", self.prefix, JOIN_TIMEOUT_SECONDS
                )
        if self._owns_client:
            self.client.close()

    # --- claims, driven by the poller or directly ----------------------------------------------

    def claim_due(self, now: datetime | None = None, limit: int | None = None) -> list[ArmedTimer]:
        """Claim up to ``limit`` timers due at ``now`` under a lease of ``lease_seconds``."""
        moment = self.clock() if now is None else now
        size = self.batch_size if limit is None else limit
        args = [to_millis(moment), to_millis(moment + self.lease), size]
        with translate_errors("claim due timers"):
            reply = self._claim(keys=[self._pending, self._claimed, self._payloads], args=args)
        return self._decode_claimed(reply)

    def ack(self, ids: Iterable[str]) -> int:
        """Forget fired timers; returns how many were still claimed."""
        ids = list(ids)
        if not ids:
            return 0
        with translate_errors("ack timers"):
            acked = self._ack(keys=[self._pending, self._claimed, self._payloads], args=ids)
        return int(acked)

    def release(self, ids: Iterable[str], *, due_at: datetime | None = None) -> int:
        """Return claimed timers to pending, due at ``due_at`` (default: now)."""
        ids = list(ids)
        if not ids:
            return 0
        due = to_millis(self.clock() if due_at is None else due_at)
        with translate_errors("release timers"):
            released = self._release(keys=[self._pending, self._claimed], args=[due, *ids])
        return int(released)

    def pending_count(self) -> int:
        """How many timers wait to be claimed (due or not)."""
        with translate_errors("count timers"):
            return int(self.client.zcard(self._pending))

    def claimed_count(self) -> int:
        """How many timers are claimed and not yet acked or released."""
        with translate_errors("count timers"):
            return int(self.client.zcard(self._claimed))

    def poll_once(self, fire: FireCallback) -> int:
        """Claim one batch and fire it; returns how many timers were claimed.

        An awaitable returned by ``fire`` is run with :func:`asyncio.run`.
        """
        return self._poll(fire, lambda awaitable: asyncio.run(_await(awaitable)))

    # --- internals -----------------------------------------------------------------------------

    def _decode_claimed(self, reply: list[Any]) -> list[ArmedTimer]:
        timers: list[ArmedTimer] = []
        for raw_id, raw in zip(reply[::2], reply[1::2], strict=True):
            try:
                timers.append(decode_timer(raw))
            except (ValueError, KeyError, TypeError) as exc:
                LOGGER.error(
                    "dropping timer %s: unreadable payload %r (%s)", _text(raw_id), raw, exc
                )
                self.ack([_text(raw_id)])
        return timers

    def _run(self, fire: FireCallback) -> None:
        with asyncio.Runner() as runner:
            while not self._stop.is_set():
                try:
                    claimed = self._poll(fire, lambda aw: runner.run(_await(aw)))
                except SchedulerError:
                    LOGGER.exception("timer poller %s: Redis failed; retrying", self.prefix)
                    self._stop.wait(max(self.poll_interval, ERROR_PAUSE_SECONDS))
                    continue
                if claimed < self.batch_size:
                    self._stop.wait(self.poll_interval)

    def _poll(self, fire: FireCallback, run: Callable[[Awaitable[Any]], object]) -> int:
        claimed_at = self.clock()
        timers = self.claim_due(claimed_at)
        deadline = claimed_at + self.lease / 2
        for index, timer in enumerate(timers):
            if self._stop.is_set() or self.clock() >= deadline:
                self.release(t.timer_id for t in timers[index:])
                break
            self._fire_one(fire, run, timer)
        return len(timers)

    def _fire_one(
        self, fire: FireCallback, run: Callable[[Awaitable[Any]], object], timer: ArmedTimer
    ) -> None:
        try:
            result = fire(timer)
            if inspect.isawaitable(result):
                run(result)
        except Exception:  # a failing callback is logged loudly and the timer retried
            LOGGER.exception("timer %s: fire callback failed; retrying later", timer.timer_id)
            self.release([timer.timer_id], due_at=self.clock() + self.retry_delay)
            return
        self.ack([timer.timer_id])


__all__ = ["DEFAULT_PREFIX", "RedisScheduler", "decode_timer", "encode_timer", "translate_errors"]
