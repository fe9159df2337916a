"""Locate the real services the integration tests talk to.

Order: a URL from the environment (``PYSTATOR_TEST_POSTGRES_URL``, ``PYSTATOR_TEST_REDIS_URL``,
``PYSTATOR_TEST_AMQP_URL``), else a testcontainers container when a Docker engine is reachable,
else skip with the reason -- or fail when ``PYSTATOR_REQUIRE_SERVICES=1`` (as ``.ci/run`` sets).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from urllib.parse import urlsplit

import pytest

REQUIRE_SERVICES = os.environ.get("PYSTATOR_REQUIRE_SERVICES", "") not in ("", "0", "false")
CONNECT_TIMEOUT_SECONDS = 3.0


def unavailable(reason: str) -> None:
    """Skip the test, or fail it when services are required."""
    if REQUIRE_SERVICES:
        pytest.fail(f"required service unavailable: {reason}", pytrace=False)
    pytest.skip(reason)


def reachable(url: str, default_port: int) -> bool:
    """True when a TCP connection to the URL's host and port succeeds."""
    parts = urlsplit(url)
    try:
        with socket.create_connection(
            (parts.hostname or "127.0.0.1", parts.port or default_port), CONNECT_TIMEOUT_SECONDS
        ):
            return True
    except OSError:
        return False


def _docker_reachable() -> bool:
    try:
        import docker  # type: ignore[import-untyped]

        docker.from_env().ping()
        return True
    except Exception:  # any failure means "no usable engine" here
        return False


def resolve(
    name: str,
    env_var: str,
    default_port: int,
    container: Callable[[ExitStack], str],
    stack: ExitStack,
) -> Iterator[str] | str:
    """Return the service URL, starting a container if that is the only way."""
    url = os.environ.get(env_var)
    if url:
        if reachable(url, default_port):
            return url
        unavailable(f"{name} at {env_var}={url} is not reachable")
    if _docker_reachable():
        return container(stack)
    unavailable(f"{name}: set {env_var} or make a Docker engine reachable for testcontainers")
    raise AssertionError("unreachable")


def postgres_container(stack: ExitStack) -> str:
    from testcontainers.postgres import PostgresContainer  # type: ignore[import-untyped]

    pg = stack.enter_context(PostgresContainer("postgres:16", driver="psycopg"))
    return str(pg.get_connection_url())


def redis_container(stack: ExitStack) -> str:
    from testcontainers.redis import RedisContainer  # type: ignore[import-untyped]

    rc = stack.enter_context(RedisContainer("redis:7"))
    return f"redis://{rc.get_container_host_ip()}:{rc.get_exposed_port(6379)}/0"


def rabbitmq_container(stack: ExitStack) -> str:
    from testcontainers.rabbitmq import RabbitMqContainer  # type: ignore[import-untyped]

    rc = stack.enter_context(RabbitMqContainer("rabbitmq:3"))
    return f"amqp://guest:guest@{rc.get_container_host_ip()}:{rc.get_exposed_port(5672)}//"
