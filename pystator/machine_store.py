"""``pystator.machine_store``: where definitions are kept, by name and version.

The code lives in :mod:`pystator.registry` (a shim: see :mod:`pystator._shims`).
``SQLAlchemyMachineStore`` (the database machine registry) loads on first use: it needs the
``api`` or ``worker`` extra.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pystator._shims import lazy_loader
from pystator.registry.definitions import InMemoryMachineStore, MachineStoreClient

if TYPE_CHECKING:
    from pystator.registry.definition_store import SQLAlchemyMachineStore

__getattr__ = lazy_loader(__name__)

__all__ = ["InMemoryMachineStore", "MachineStoreClient", "SQLAlchemyMachineStore"]
