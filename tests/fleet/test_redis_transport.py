"""A channel left open when Celery collects a broken Redis connection closes with a connection
error, not kombu's ``AttributeError`` (which Celery treats as unrecoverable: the worker exited
after a Redis broker restart under load). Its unacked message stays in Redis, not lost."""

from __future__ import annotations

import kombu
import pytest
import redis
from redis.exceptions import ConnectionError as RedisConnectionError

from pystator.config.settings import Settings
from pystator.fleet.celery_config import new_app
from pystator.fleet.redis_transport import Channel, Transport

pytestmark = pytest.mark.integration


def test_redis_brokers_use_the_fixed_transport(redis_url: str) -> None:
    app = new_app(Settings(broker_url=redis_url))
    with app.connection_for_write() as connection:
        assert isinstance(connection.transport, Transport)
        assert isinstance(connection.channel(), Channel)


@pytest.mark.parametrize("url", ["memory://", "amqp://guest:guest@127.0.0.1:5672//"])
def test_other_brokers_keep_kombu_s_transport(url: str) -> None:
    app = new_app(Settings(broker_url=url))
    assert not app.conf.broker_transport
    assert not isinstance(app.connection_for_write().transport, Transport)


def test_a_channel_cut_off_from_its_transport_raises_a_connection_error(redis_url: str) -> None:
    app = new_app(Settings(broker_url=redis_url))
    connection = app.connection_for_write()
    channel = connection.channel()
    queue = kombu.Queue("pystator-detached-test", channel=channel)
    queue.declare()
    kombu.Producer(channel).publish({"n": 1}, routing_key=queue.name, serializer="json")
    message = queue.get(no_ack=False)  # delivered, not acked: the channel holds it
    assert message is not None
    # The state Celery's consumer leaves a channel in when the broker went away: the channel's
    # first close failed on the dead socket, then collecting the connection detached its
    # transport (kombu's Connection.collect() sets the transport's client to None).
    connection.transport.client = None

    with pytest.raises(RedisConnectionError):  # kombu's own transport: AttributeError
        channel.close()
    assert RedisConnectionError in connection.connection_errors  # Celery ignores it, reconnects

    client = redis.Redis.from_url(redis_url)
    try:  # the unacked message is still in Redis: redelivered after the visibility timeout
        assert client.hlen("unacked") == 1
    finally:
        client.close()
