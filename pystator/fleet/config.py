"""``WorkerConfig``: the settings of one :class:`~pystator.fleet.worker.Worker`, by the public
package's names.

Every field is a view of one of our settings (:class:`~pystator.config.settings.Settings`), read from the
variable of the same name (``concurrency`` ↔ ``PYSTATOR_WORKER_CONCURRENCY``); three of them are
settings we already had under another name, and the public package's variable is a second name for
it (``PYSTATOR_WORKER_DB_URL`` is ``PYSTATOR_DATABASE_URL``). A field left ``None`` keeps the
setting's value: environment, then ``pystator.cfg``, then the default.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path

from pystator.config.settings import WORKER_ID_MAX_LENGTH, Settings, load_settings
from pystator.fsm_core.errors import SettingsError

#: WorkerConfig field -> the Settings field it is.
SETTING_OF = {
    "db_url": "database_url",
    "poll_interval_ms": "worker_poll_interval_ms",
    "concurrency": "worker_concurrency",
    "drain_timeout_s": "worker_drain_timeout_s",
    "max_attempts": "max_attempts",
    "machine_source": "worker_machine_source",
    "machine_dir": "machines",
    "worker_id": "worker_id",
    "dlq_enabled": "worker_dlq_enabled",
    "dlq_database_url": "worker_dlq_database_url",
    "dlq_table_name": "worker_dlq_table_name",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkerConfig:
    """What a :class:`~pystator.fleet.worker.Worker` runs with (None: the setting's value).
    The values are checked when the worker is built, with the settings they complete
    (:meth:`apply`).

    - ``db_url``: the database of events and entities (``PYSTATOR_DATABASE_URL``, also read as
      ``PYSTATOR_WORKER_DB_URL``).
    - ``poll_interval_ms``: how long an idle drain loop waits before looking again, unless a
      submit in this process wakes it first (``PYSTATOR_WORKER_POLL_INTERVAL_MS``, 50).
    - ``concurrency``: drain threads (``PYSTATOR_WORKER_CONCURRENCY``, 2).
    - ``drain_timeout_s``: how long shutdown waits for in-flight batches
      (``PYSTATOR_WORKER_DRAIN_TIMEOUT_S``, 30).
    - ``max_attempts``: attempts of the events the worker itself creates (timer firings) before
      they are dead; a submitted event carries its own (``PYSTATOR_MAX_ATTEMPTS``, also read as
      ``PYSTATOR_WORKER_MAX_ATTEMPTS``, 5).
    - ``machine_source``: ``"db"`` (the database registry only) or ``"yaml"`` (also the files in
      ``machine_dir``); unset: ``"yaml"`` when ``machine_dir`` is set
      (``PYSTATOR_WORKER_MACHINE_SOURCE``).
    - ``machine_dir``: a directory (or file) of machine definitions (``PYSTATOR_MACHINES``, also
      read as ``PYSTATOR_WORKER_MACHINE_DIR``).
    - ``worker_id``: this process's id in heartbeats and liveness, unique per running worker
      (``PYSTATOR_WORKER_ID``; default ``host:pid:random``).
    - ``dlq_enabled``, ``dlq_database_url``, ``dlq_table_name``: the public package's DLQ
      settings (``PYSTATOR_WORKER_DLQ_*``). Our dead letters are rows of ``worker_events``
      (status ``dead``) in the main database, so only values that say so are accepted
      (enabled, the main database, ``worker_events``); any other value fails when the config
      is built, with a message saying where dead letters live.
    """

    db_url: str | None = None
    poll_interval_ms: int | None = None
    concurrency: int | None = None
    drain_timeout_s: float | None = None
    max_attempts: int | None = None
    machine_source: str | None = None
    machine_dir: str | None = None
    worker_id: str | None = None
    dlq_enabled: bool | None = None
    dlq_database_url: str | None = None
    dlq_table_name: str | None = None

    def __post_init__(self) -> None:
        if (self.dlq_enabled, self.dlq_database_url, self.dlq_table_name) != (None, None, None):
            replace(  # the settings' own check (SettingsError saying where dead letters live)
                Settings(),
                database_url=self.db_url or self.dlq_database_url or Settings().database_url,
                worker_dlq_enabled=self.dlq_enabled is not False,
                worker_dlq_database_url=self.dlq_database_url,
                worker_dlq_table_name=self.dlq_table_name,
            )
        if self.worker_id is not None and len(self.worker_id) > WORKER_ID_MAX_LENGTH:
            raise SettingsError(
                f"PYSTATOR_WORKER_ID is {len(self.worker_id)} characters long; "
                f"at most {WORKER_ID_MAX_LENGTH} fit"
            )

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, config_file: str | Path | None = None
    ) -> WorkerConfig:
        """Every field from the environment (``PYSTATOR_WORKER_*`` and the settings they share
        with the rest of pystator), then ``pystator.cfg``, then the defaults.

        A bad value raises :class:`~pystator.errors.SettingsError` naming the variable.
        """
        return cls.from_settings(load_settings(environ, config_file))

    @classmethod
    def from_settings(cls, settings: Settings) -> WorkerConfig:
        """Every field as ``settings`` has it."""
        return cls(**{name: getattr(settings, setting) for name, setting in SETTING_OF.items()})

    def resolve_dlq_database_url(self, settings: Settings | None = None) -> str:
        """The database dead letters are in: ``dlq_database_url`` when set (it must be the main
        database), else the main database (``db_url``, else ``settings``' or the
        environment's ``PYSTATOR_DATABASE_URL``). They are ``worker_events`` rows there."""
        if self.dlq_database_url:
            return self.dlq_database_url
        if self.db_url:
            return self.db_url
        return (settings or load_settings()).database_url

    def apply(self, settings: Settings) -> Settings:
        """``settings`` with this config's fields that are set (validated again)."""
        changes = {
            SETTING_OF[f.name]: value
            for f in fields(self)
            if (value := getattr(self, f.name)) is not None
        }
        return replace(settings, **changes)


__all__ = ["WorkerConfig"]
