"""The machine registry: every definition a process knows, from files and from the database.

- :mod:`.machines`: :class:`~.machines.MachineRegistry`, the machines of a worker, producer or
  API process by name, from a directory of files and the database registry, with the guards and
  actions of ``PYSTATOR_APP`` bound; ``load_machine`` / ``machine_files`` read files.
- :mod:`.stored`: :class:`~.stored.StoredMachines`, the database registry's current versions,
  compiled once and refreshed in the background (``PYSTATOR_REGISTRY_REFRESH_SECONDS``).
- :mod:`.versions`: publishing a version (validated completely first), listing, showing, retiring
  and syncing a directory: what ``pystator machines …`` and ``/api/v1/machines`` call.
- Compatibility reports between versions (entities per state, pending events, armed timers that
  a new version would strand) belong here too, next to :mod:`.versions`.

The SQL is :mod:`pystator.stores.sql.registry_queries` (tables ``machine_registry`` and
``machine_versions``).
"""
