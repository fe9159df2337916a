"""Operator operations that the CLI, the HTTP API and the dashboard share.

Each module is a set of plain functions over a database engine that owns its selection, result
and row types, so ``pystator.api`` and ``pystator.commands`` never import ``pystator.stores.sql``:
:mod:`.admin` (events, actions, entities: list, show, replay, discard, stats), :mod:`.lookups`
(the dashboard's read-only investigations), :mod:`.audit` (who changed what),
:mod:`.api_keys`, :mod:`.health` (liveness, readiness), :mod:`.gauges` (the fleet-wide metrics of
``/metrics``) and :mod:`.schema` (migrations, history partitioning). Services may use the fleet
(:mod:`pystator.fleet`); the fleet never imports them.
"""
