"""The fixtures reach real services (and isolate tests from each other)."""

from __future__ import annotations

import redis
import sqlalchemy as sa
from kombu import Connection


def test_postgres_database_is_fresh(pg_url: str) -> None:
    engine = sa.create_engine(pg_url)
    with engine.connect() as conn:
        tables = conn.execute(
            sa.text("select count(*) from pg_tables where schemaname = 'public'")
        ).scalar_one()
    engine.dispose()
    assert tables == 0


def test_redis_database_is_empty(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    assert client.dbsize() == 0
    client.set("k", "v")
    assert client.get("k") == b"v"


def test_rabbitmq_accepts_connections(amqp_url: str, unique_name: str) -> None:
    with Connection(amqp_url, connect_timeout=5) as conn:
        conn.ensure_connection(max_retries=1)
        queue = conn.SimpleQueue(
            f"pystator-test-{unique_name}", queue_opts={"auto_delete": True, "durable": False}
        )
        queue.put({"hello": "world"})
        message = queue.get(timeout=5)
        assert message.payload == {"hello": "world"}
        message.ack()
        queue.close()
