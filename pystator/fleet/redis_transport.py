"""kombu's Redis transport, with one fix: a channel cut off from its broker says so.

When a Redis broker goes away, Celery's consumer collects the broken connection, which can leave
the connection's default channel open (its close failed on the dead socket) while detaching the
transport from the connection. Closing that channel a second time tries to put its unacked
messages back through the detached transport, and kombu raises ``AttributeError: 'NoneType'
object has no attribute 'hostname'``. Celery counts that as an unrecoverable error and the whole
worker exits, so a broker restart under load used to stop workers (and acks in flight failed the
same way).

Here a detached channel raises :class:`redis.exceptions.ConnectionError` instead: a connection
error, which Celery ignores while closing and answers by reconnecting. The messages such a channel
could not put back stay in Redis's unacked set and are redelivered after the visibility timeout;
the fleet loses nothing meanwhile, because every nudge is a hint (the database holds the events,
and the relay nudges again) and every timer is also in the timers table.

:func:`pystator.fleet.celery_config.new_app` selects this transport for ``redis://`` brokers.
"""

from __future__ import annotations

from typing import Any

from kombu.transport import redis as kombu_redis
from redis.exceptions import ConnectionError as RedisConnectionError

#: The import path Celery's ``broker_transport`` setting names this transport by.
TRANSPORT_PATH = "pystator.fleet.redis_transport:Transport"


class Channel(kombu_redis.Channel):
    """A kombu Redis channel that raises a connection error once its transport is detached."""

    def _connparams(self, asynchronous: bool = False) -> dict[str, Any]:
        if self.connection is None or self.connection.client is None:
            raise RedisConnectionError(
                "this broker channel's connection was closed; reconnecting on a new one"
            )
        params: dict[str, Any] = super()._connparams(  # type: ignore[no-untyped-call]
            asynchronous=asynchronous
        )
        return params


class Transport(kombu_redis.Transport):
    """kombu's Redis transport with :class:`Channel`."""

    Channel = Channel


__all__ = ["TRANSPORT_PATH", "Channel", "Transport"]
