"""``pystator.machine_builder``: build a :class:`~pystator.StateMachine` from a definition or a
definition store.

The code lives in :mod:`pystator.registry.definitions` (a shim: see :mod:`pystator._shims`).
"""

from __future__ import annotations

from pystator.registry.definitions import (
    MachineNotFoundError,
    build_machine,
    build_machine_from_store,
)

__all__ = ["MachineNotFoundError", "build_machine", "build_machine_from_store"]
