"""The machine registry: every definition a process knows, from files and from the database.

- :mod:`.machines`: :class:`~.machines.MachineRegistry`, the machines of a worker, producer or
  API process by name, from a directory of files and the database registry, with the guards and
  actions of ``PYSTATOR_APP`` bound; ``load_machine`` / ``machine_files`` read files.
- :mod:`.stored`: :class:`~.stored.StoredMachines`, the database registry's current versions,
  compiled once and refreshed in the background (``PYSTATOR_REGISTRY_REFRESH_SECONDS``).
- :mod:`.versions`: publishing a version (validated completely first), listing, showing, retiring
  and syncing a directory: what ``pystator machines …`` and ``/api/v1/machines`` call.
- :mod:`.compatibility`: the one compatibility report of a candidate version against the live
  fleet (entities per removed state, pending events and armed timers it would strand):
  :func:`~.compatibility.compatibility_report`; publishing refuses what it blocks.
- :mod:`.migration`: a state map (``old → new``) moving live entities to a new version under
  their locks, each move a ``migration`` history row.

The SQL is :mod:`pystator.stores.sql.registry_queries` (tables ``machine_registry`` and
``machine_versions``) and :mod:`pystator.stores.sql.compatibility_queries`.
"""
