"""All SQL of the project: connections and locking (SQLite and PostgreSQL), the schema, one query
module per table or job, the migrations' runner and the SQL state stores.

- connections: :mod:`.engine` (URLs, driver errors), :mod:`.connections` (the fleet's pools,
  transactions), :mod:`.locking` (per-entity locks), :mod:`.schema` and :mod:`.rows`;
- queries, one module per table or job: ``*_queries.py``;
- the SQL state-store family: :mod:`.state_store` (sync), :mod:`.async_state_store` (async),
  :mod:`.documented_stores` (``SQLiteStateStore`` / ``PostgresStateStore`` and ``connect()``),
  with :mod:`.migrator` running the Alembic migrations shipped in :mod:`pystator.migrations`.
"""
