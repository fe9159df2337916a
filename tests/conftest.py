"""Shared fixtures: isolated PostgreSQL databases, Redis keyspaces and RabbitMQ access."""

from __future__ import annotations

import fcntl
import gc
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest

from tests.support import services

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
REDIS_TEST_DBS = range(1, 16)  # database 0 is left to the developer
GC_MARKERS = ("integration", "browser")  # tests whose leaks are collected when they end
#: Fixtures that reach a real service: a test using one (directly or through another fixture)
#: is an integration test, whether or not its module says so.
SERVICE_FIXTURES = frozenset({"postgres_server_url", "redis_server_url", "amqp_url"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that needs PostgreSQL, Redis or RabbitMQ ``integration`` (so
    ``-m "not integration"`` runs exactly the tests that need no service)."""
    for item in items:
        needs = SERVICE_FIXTURES.intersection(getattr(item, "fixturenames", ()))
        if needs and item.get_closest_marker("integration") is None:
            item.add_marker(pytest.mark.integration)


@pytest.fixture(autouse=True)
def _collect_garbage_after_test(request: pytest.FixtureRequest) -> Iterator[None]:
    """Collect garbage when a test with real services ends (the last teardown: set up first),
    so a connection it or its fixtures left open warns in this test instead of a later one.

    Unit tests skip it: a full collection costs ~80 ms, more than most of them take.
    """
    yield
    if any(request.node.get_closest_marker(m) for m in GC_MARKERS):
        gc.collect()


@pytest.fixture(scope="session")
def _service_stack() -> Iterator[ExitStack]:
    with ExitStack() as stack:
        yield stack


@pytest.fixture(scope="session")
def postgres_server_url(_service_stack: ExitStack) -> str:
    """URL of a PostgreSQL server's maintenance database (``postgresql+psycopg://…``)."""
    url = services.resolve(
        "PostgreSQL",
        "PYSTATOR_TEST_POSTGRES_URL",
        5432,
        services.postgres_container,
        _service_stack,
    )
    return str(url)


@pytest.fixture
def pg_url(postgres_server_url: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for this test only; dropped afterwards."""
    import sqlalchemy as sa

    name = f"pystator_t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(postgres_server_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        yield str(sa.make_url(postgres_server_url).set(database=name).render_as_string(False))
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A fresh SQLite database file for this test only."""
    return f"sqlite:///{tmp_path / 'pystator.db'}"


@pytest.fixture(scope="session")
def _pg_migrated_template(postgres_server_url: str) -> Iterator[str]:
    """Name of a PostgreSQL database migrated to head once per session (a template)."""
    import sqlalchemy as sa

    from pystator.stores.sql import migrator

    name = f"pystator_tpl_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(postgres_server_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        url = sa.make_url(postgres_server_url).set(database=name)
        migrator.upgrade(url.render_as_string(hide_password=False))
        yield name
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


@pytest.fixture
def pg_migrated_url(postgres_server_url: str, _pg_migrated_template: str) -> Iterator[str]:
    """A fresh PostgreSQL database already at the newest schema (copied from a template)."""
    import sqlalchemy as sa

    name = f"pystator_t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(postgres_server_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}" TEMPLATE "{_pg_migrated_template}"'))
        yield str(sa.make_url(postgres_server_url).set(database=name).render_as_string(False))
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


@pytest.fixture
def sqlite_migrated_url(sqlite_url: str) -> str:
    """A fresh SQLite database file already at the newest schema."""
    from pystator.stores.sql import migrator

    migrator.upgrade(sqlite_url)
    return sqlite_url


@pytest.fixture(scope="session")
def redis_server_url(_service_stack: ExitStack) -> str:
    url = services.resolve(
        "Redis", "PYSTATOR_TEST_REDIS_URL", 6379, services.redis_container, _service_stack
    )
    return str(url)


@pytest.fixture
def redis_url(redis_server_url: str) -> Iterator[str]:
    """A Redis URL whose logical database is this test's alone: empty at start, flushed after.

    Concurrent pytest runs on one machine each lock a different database number (1-15).
    """
    import redis

    base = (
        redis_server_url.rsplit("/", 1)[0] if redis_server_url.count("/") > 2 else redis_server_url
    )
    with _locked_redis_db() as db:
        url = f"{base}/{db}"
        client = redis.Redis.from_url(url)
        client.flushdb()
        try:
            yield url
        finally:
            client.flushdb()
            client.close()


@contextmanager
def _locked_redis_db() -> Iterator[int]:
    for db in REDIS_TEST_DBS:
        handle = open(Path(tempfile.gettempdir()) / f"pystator-test-redis-db-{db}.lock", "w")  # noqa: SIM115
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            continue
        try:
            yield db
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
            handle.close()
        return
    raise RuntimeError("all Redis test databases are in use by other test runs")


@pytest.fixture(scope="session")
def amqp_url(_service_stack: ExitStack) -> str:
    """URL of a RabbitMQ broker; tests isolate themselves with unique queue names."""
    url = services.resolve(
        "RabbitMQ", "PYSTATOR_TEST_AMQP_URL", 5672, services.rabbitmq_container, _service_stack
    )
    return str(url)


@pytest.fixture
def unique_name() -> str:
    """A short unique token for queue names, key prefixes and machine names."""
    return uuid.uuid4().hex[:10]
