"""``pystator.machine_parser``: parse a definition once into a :class:`MachineDefinition`.

The code lives in :mod:`pystator.registry.definitions` (a shim: see :mod:`pystator._shims`).
"""

from __future__ import annotations

from pystator.registry.definitions import MachineDefinition, parse_machine, parse_machine_file

__all__ = ["MachineDefinition", "parse_machine", "parse_machine_file"]
