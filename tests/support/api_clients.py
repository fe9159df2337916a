"""Helpers of the HTTP API tests: an app on a test database, clients per role, a small machine."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from fastapi.testclient import TestClient

from pystator.api import create_app
from pystator.api.auth import mint_token
from pystator.config.settings import Settings
from pystator.fleet.runtime import Runtime
from pystator.services import api_keys
from pystator.services.api_keys import Role
from pystator.services.audit import Actor
from pystator.stores.sql.connections import dispose, fleet_engine
from pystator.stores.sql.schema import worker_events

#: The address TestClient requests appear to arrive on (loopback, like a local ``pystator api``).
LOOPBACK = "http://127.0.0.1:8000"
JWT_SECRET = "test-secret-of-at-least-thirty-two-bytes!"
MACHINE = "parcel"
#: Who changes made by test set-up code are recorded as.
TEST_ACTOR = Actor(principal="test", role="admin", method="PYTHON", route="tests")


def parcel(dest_on_ship: str = "shipped", *, extra_trigger: str | None = None) -> dict[str, Any]:
    """A small machine: created --ship--> shipped|held --deliver--> delivered."""
    transitions: list[dict[str, Any]] = [
        {"trigger": "ship", "source": "created", "dest": dest_on_ship, "actions": ["notify"]},
        {"trigger": "deliver", "source": ["shipped", "held"], "dest": "delivered"},
    ]
    if extra_trigger:
        transitions.append({"trigger": extra_trigger, "source": "created", "dest": "held"})
    return {
        "meta": {"machine_name": MACHINE, "version": "1.0"},
        "states": [
            {"name": "created", "type": "initial"},
            {"name": "shipped", "type": "stable"},
            {"name": "held", "type": "stable"},
            {"name": "delivered", "type": "terminal"},
        ],
        "transitions": transitions,
    }


def settings_for(db_url: str, **overrides: Any) -> Settings:
    """Settings on ``db_url`` with quick registry refreshes."""
    return replace(Settings(database_url=db_url, registry_refresh_seconds=0.2), **overrides)


@contextmanager
def client(db_url: str, *, base_url: str = LOOPBACK, **overrides: Any) -> Iterator[TestClient]:
    """A TestClient on the real app (its lifespan runs: services built, auth checked)."""
    app = create_app(settings_for(db_url, **overrides))
    with TestClient(app, base_url=base_url, raise_server_exceptions=False) as test_client:
        yield test_client


def token(role: Role | str, subject: str = "tester") -> str:
    """A JWT for ``role`` signed with :data:`JWT_SECRET`."""
    settings = Settings(api_jwt_secret=JWT_SECRET)
    return mint_token(settings, subject=subject, role=Role(role), ttl=timedelta(minutes=10))


def bearer(secret: str) -> dict[str, str]:
    """The Authorization header for a key or token."""
    return {"Authorization": f"Bearer {secret}"}


def create_key(db_url: str, role: str) -> str:
    """A new API key of ``role`` on the database at ``db_url``."""
    engine = fleet_engine(db_url, pool_size=1)
    try:
        return api_keys.create_key(engine, role=role, name=f"test {role}", by=TEST_ACTOR).secret
    finally:
        dispose(engine)


def drain(db_url: str) -> int:
    """Apply every due event with an in-process processor (machines from the registry)."""
    runtime = Runtime.from_settings(settings_for(db_url), concurrency=1)
    try:
        stored = runtime.machines.stored
        assert stored is not None
        stored.refresh()
        return runtime.processor.drain()
    finally:
        runtime.close()


def set_status(db_url: str, ids: list[int], status: str, error: str = "boom") -> None:
    """Force events into ``status`` with one recorded error (test set-up for repairs)."""
    engine = fleet_engine(db_url, pool_size=1)
    try:
        with engine.begin() as conn:
            conn.execute(
                sa.update(worker_events)
                .where(worker_events.c.id.in_(ids))
                .values(
                    status=status,
                    attempts=1,
                    errors=[{"attempt": 1, "error": "RuntimeError", "message": error}],
                )
            )
    finally:
        dispose(engine)
