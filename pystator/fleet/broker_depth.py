"""How many nudges wait in the broker: the reading :class:`~pystator.fleet.nudge_gate.NudgeGate`
gates on.

- **Redis** (``redis://``, ``rediss://``): the lengths of the Celery queue's lists (kombu keeps
  one list per priority step; pystator publishes at the default priority), in one round trip.
- **RabbitMQ** (``amqp://``, ``pyamqp://``): a passive ``queue.declare``, whose reply carries the
  number of messages ready. A queue not declared yet holds nothing.

Messages a worker has already taken (prefetched, unacknowledged) are not counted: they are
bounded by the workers' slots (prefetch multiplier 1). Other transports have no reader: their
producers publish without a gate.
"""

from __future__ import annotations

import threading

import redis
from amqp.exceptions import ChannelError
from kombu.connection import Connection

from pystator.config.logs import get_logger

#: kombu's Redis transport: a queue's list per priority step is ``queue + SEP + step`` (step 0
#: is the bare queue name).
REDIS_PRIORITY_SEPARATOR = "\x06\x16"
REDIS_PRIORITY_STEPS = (0, 3, 6, 9)
#: Seconds a depth reading may take before it counts as failed.
READ_TIMEOUT_SECONDS = 2.0
#: AMQP reply code of a passive declare of a queue that does not exist.
NOT_FOUND = 404

log = get_logger("pystator.nudge")


class RedisQueueDepth:
    """Messages ready in a Celery queue on a Redis broker."""

    def __init__(self, url: str, queue: str) -> None:
        self.client = redis.Redis.from_url(
            url, socket_timeout=READ_TIMEOUT_SECONDS, socket_connect_timeout=READ_TIMEOUT_SECONDS
        )
        self.keys = [
            queue if step == 0 else f"{queue}{REDIS_PRIORITY_SEPARATOR}{step}"
            for step in REDIS_PRIORITY_STEPS
        ]

    def __call__(self) -> int:
        pipe = self.client.pipeline(transaction=False)
        for key in self.keys:
            pipe.llen(key)
        return sum(int(n) for n in pipe.execute())

    def close(self) -> None:
        """Release the connection."""
        self.client.close()


class AmqpQueueDepth:
    """Messages ready in a queue on a RabbitMQ broker (one connection, opened on first use)."""

    def __init__(self, url: str, queue: str) -> None:
        self.url = url
        self.queue = queue
        self._lock = threading.Lock()
        self._connection: Connection | None = None

    def __call__(self) -> int:
        with self._lock:
            try:
                return self._declare()
            except Exception:
                self._drop()  # a closed channel or connection: a new one next time
                raise

    def _declare(self) -> int:
        if self._connection is None:
            self._connection = Connection(self.url, connect_timeout=READ_TIMEOUT_SECONDS)  # type: ignore[no-untyped-call]
        channel = self._connection.default_channel
        try:
            ok = channel.queue_declare(queue=self.queue, passive=True)  # type: ignore[no-untyped-call]
        except ChannelError as exc:
            if getattr(exc, "code", None) != NOT_FOUND:
                raise
            self._drop()  # the broker closed the channel; nobody declared the queue yet
            return 0
        return int(ok.message_count)

    def _drop(self) -> None:
        connection, self._connection = self._connection, None
        if connection is None:
            return
        try:
            connection.release()  # type: ignore[no-untyped-call]
        except (OSError, *connection.connection_errors, *connection.channel_errors) as exc:
            log.debug("amqp_depth_release_failed", error=str(exc))  # already broken

    def close(self) -> None:
        """Release the connection."""
        with self._lock:
            self._drop()


def queue_depth_reader(broker_url: str, queue: str) -> RedisQueueDepth | AmqpQueueDepth | None:
    """The depth reader for ``broker_url``'s transport, or None when it has none."""
    scheme = broker_url.split("://", 1)[0].lower()
    if scheme in ("redis", "rediss"):
        return RedisQueueDepth(broker_url, queue)
    if scheme in ("amqp", "pyamqp", "amqps"):
        return AmqpQueueDepth(broker_url, queue)
    return None


__all__ = ["AmqpQueueDepth", "RedisQueueDepth", "queue_depth_reader"]
