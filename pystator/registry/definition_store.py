"""``SQLAlchemyMachineStore``: the definition store on the database machine registry.

It is the registry the fleet, the HTTP API and ``pystator machines …`` use (tables
``machine_registry`` and ``machine_versions``): a definition saved here is the version the
workers pick up (within ``PYSTATOR_REGISTRY_REFRESH_SECONDS``), and a version published through
the API is one this store returns. Saving goes through :func:`pystator.registry.versions.publish`
(validated completely first; identical to the current version: nothing stored), which records
the save in the audit log as ``machine_store:<user>@<host>`` (or ``created_by``), ``PYTHON``
``SQLAlchemyMachineStore.save``.
"""

from __future__ import annotations

from sqlalchemy.engine import Engine

from pystator.fsm_core.errors import NotFoundError
from pystator.fsm_core.loading import load_definition
from pystator.registry import versions
from pystator.registry.definitions import MachineDefinition, MachineNotFoundError
from pystator.stores.sql.audit_queries import Actor
from pystator.stores.sql.engine import create_engine_from_url

#: The door a version saved through this store is recorded as coming through
#: (``machine_store:<user>@<host>``).
STORE_AUTHOR = "machine_store"
#: The ``route`` of its audit rows.
SAVE_ROUTE = "SQLAlchemyMachineStore.save"


class SQLAlchemyMachineStore:
    """A :class:`~pystator.registry.definitions.MachineStoreClient` over the machine registry
    tables of ``engine`` (a SQLAlchemy engine, or a database URL: an engine is made and owned,
    :meth:`close` disposes it). The schema must exist (``pystator db upgrade``). Saves are
    recorded as made by ``created_by`` (default: ``machine_store:<user>@<host>``)."""

    def __init__(self, engine: Engine | str, *, created_by: str | None = None) -> None:
        self._owned = isinstance(engine, str)
        self.engine: Engine = create_engine_from_url(engine) if isinstance(engine, str) else engine
        actor = Actor.python(STORE_AUTHOR, SAVE_ROUTE)
        if created_by is not None:
            actor = Actor(
                principal=created_by, role=actor.role, method=actor.method, route=actor.route
            )
        self.actor = actor
        self.created_by = actor.principal

    def save(self, definition: MachineDefinition) -> int:
        """See :meth:`~pystator.registry.definitions.MachineStoreClient.save`."""
        return versions.publish(self.engine, definition.document, by=self.actor).version

    def get(self, name: str, version: int | None = None) -> MachineDefinition:
        """See :meth:`~pystator.registry.definitions.MachineStoreClient.get` (a retired
        machine's versions are still returned)."""
        try:
            detail = versions.show_machine(self.engine, name, version=version)
        except NotFoundError as exc:
            raise MachineNotFoundError(exc.message, details=dict(exc.details)) from None
        shown = detail.version
        return load_definition(shown.definition, source=f"registry:{name}@{shown.version}")

    def list_machines(self) -> list[str]:
        """See :meth:`~pystator.registry.definitions.MachineStoreClient.list_machines`."""
        return [record.name for record in versions.list_machines(self.engine)]

    def list_versions(self, name: str) -> list[int]:
        """See :meth:`~pystator.registry.definitions.MachineStoreClient.list_versions`."""
        try:
            detail = versions.show_machine(self.engine, name)
        except NotFoundError:
            return []
        return sorted(v.version for v in detail.versions)

    def close(self) -> None:
        """Dispose the engine if this store made it from a URL."""
        if self._owned:
            self.engine.dispose()


__all__ = ["STORE_AUTHOR", "SQLAlchemyMachineStore"]
