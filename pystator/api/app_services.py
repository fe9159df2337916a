"""What one API process holds: settings, the database engine, machines, the producer, auth.

Built once per process when the app starts (:func:`build_services`) and closed when it stops.
The database pool is fixed: ``PYSTATOR_API_DB_POOL_SIZE`` connections per API process all told
(default 5) — :data:`~pystator.config.settings.API_AUTOCOMMIT_CONNECTIONS` (2) of them serve single
submits and audit rows (autocommit, one statement each), the rest everything else (listings,
batches, repairs, the readiness check, the registry refresh). A request that finds the pool busy
waits up to 10 s, then gets 503.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import Engine

from pystator.api.auth import Authenticator
from pystator.config.settings import API_AUTOCOMMIT_CONNECTIONS, Settings
from pystator.fleet.composition import (
    dispose,
    machine_registry,
    make_nudger,
    make_producer,
    prepare_database,
    settings_engine,
)
from pystator.fleet.nudge import Nudger
from pystator.fleet.producer import Producer
from pystator.fleet.startup import wait_for_database
from pystator.registry.machines import MachineRegistry
from pystator.services.audit import AuditWriter
from pystator.services.discovery import DiscoveryDesk


@dataclass
class Services:
    """The long-lived parts the routes use (one per API process)."""

    settings: Settings
    engine: Engine
    machines: MachineRegistry
    nudger: Nudger
    producer: Producer
    auth: Authenticator
    audit: AuditWriter
    discovery: DiscoveryDesk

    def close(self) -> None:
        """Write queued audit rows, flush pending nudges, release the database connections."""
        self.audit.close()
        self.discovery.close()
        self.nudger.flush()
        self.machines.close_stored(self.engine)
        dispose(self.engine)


def api_pool_size(settings: Settings) -> int:
    """Connections of the API's main pool (the autocommit companion holds the rest)."""
    return settings.api_db_pool_size - API_AUTOCOMMIT_CONNECTIONS


def build_services(settings: Settings) -> Services:
    """Wire an API process from ``settings`` through the composition root (migrating an
    embedded SQLite database first), once the database answers (see
    :func:`~pystator.fleet.startup.wait_for_database`)."""
    wait_for_database(settings, process="api")
    prepare_database(settings)
    engine = settings_engine(settings, api_pool_size(settings))
    try:
        machines = machine_registry(settings, engine)
        nudger = make_nudger(settings)
        auth = Authenticator.from_settings(settings, engine)
    except BaseException:
        dispose(engine)  # the first registry load already pooled a connection
        raise
    producer = make_producer(settings, engine, machines, nudger)
    return Services(
        settings=settings,
        engine=engine,
        machines=machines,
        nudger=nudger,
        producer=producer,
        auth=auth,
        audit=AuditWriter(engine),
        discovery=DiscoveryDesk(settings),
    )


__all__ = ["Services", "api_pool_size", "build_services"]
