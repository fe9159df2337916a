"""Runtime settings: environment first, then an optional ``pystator.cfg``, then defaults.

This is the only module that reads ``os.environ``; everything else receives a frozen
:class:`Settings`. Invalid values fail fast with the setting's name and the accepted forms.
"""

from __future__ import annotations

import configparser
import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from pystator.fsm_core.errors import SettingsError

DEFAULT_DATABASE_URL = "sqlite:///pystator.db"
DEFAULT_BROKER_URL = "memory://"
DEFAULT_SCHEDULER = "db"
DEFAULT_MAX_ATTEMPTS = 5
DEFAULT_MAX_CONTEXT_BYTES = 64 * 1024
DEFAULT_RELAY_INTERVAL_SECONDS = 1.0
DEFAULT_RETRY_BASE_SECONDS = 0.5
DEFAULT_RETRY_MAX_SECONDS = 300.0
DEFAULT_TIMER_POLL_SECONDS = 0.05
DEFAULT_TIMER_RECOVERY_SECONDS = 10.0
DEFAULT_TIMER_HORIZON_SECONDS = 60.0
DEFAULT_MAX_CONTEXT_DEPTH = 32
DEFAULT_MAX_ENTITY_CONTEXT_BYTES = 256 * 1024
DEFAULT_BATCH_MAX_BYTES = 4 * 1024 * 1024
DEFAULT_BATCH_ENTITIES = 64
DEFAULT_BATCH_EVENTS_PER_ENTITY = 200
DEFAULT_ACTION_THREADS = 8
DEFAULT_HEARTBEAT_SECONDS = 5.0
DEFAULT_STALL_SECONDS = 60.0
DEFAULT_STATEMENT_TIMEOUT_SECONDS = 30.0
DEFAULT_IDLE_IN_TRANSACTION_TIMEOUT_SECONDS = 60.0
DEFAULT_ACTION_TIMEOUT_SECONDS = 30.0
DEFAULT_ACTION_MAX_ATTEMPTS = 20
DEFAULT_ACTION_RETRY_BASE_SECONDS = 1.0
DEFAULT_ACTION_RETRY_MAX_SECONDS = 3600.0
DEFAULT_API_HOST = "127.0.0.1"
DEFAULT_API_PORT = 8000
DEFAULT_API_DB_POOL_SIZE = 5
DEFAULT_API_MAX_BODY_BYTES = 4 * 1024 * 1024
DEFAULT_API_MAX_BATCH = 10_000
DEFAULT_API_PAGE_LIMIT = 500
DEFAULT_API_BULK_LIMIT = 10_000
DEFAULT_REGISTRY_REFRESH_SECONDS = 2.0
#: Nudges a process stops publishing at (messages ready in the broker's queue; 0: no bound).
DEFAULT_NUDGE_QUEUE_MAX = 128
#: How long a worker, relay or API process waits for its database at start-up (0: not at all).
DEFAULT_STARTUP_TIMEOUT_SECONDS = 300.0
#: Longest ``PYSTATOR_WORKER_ID`` (the ``worker_heartbeats`` key column's length).
WORKER_ID_MAX_LENGTH = 200
# the worker process (``pystator worker`` and ``pystator.worker.Worker``)
DEFAULT_WORKER_CONCURRENCY = 2
DEFAULT_WORKER_POLL_INTERVAL_MS = 50
DEFAULT_WORKER_DRAIN_TIMEOUT_S = 30.0
MACHINE_SOURCES = ("yaml", "db")
# retention windows in days (0 keeps rows forever); see the README's Retention section
DEFAULT_RETENTION_COMPLETED_DAYS = 7.0
DEFAULT_RETENTION_REJECTED_DAYS = 30.0
DEFAULT_RETENTION_HISTORY_DAYS = 90.0
DEFAULT_RETENTION_ACTIONS_DAYS = 7.0
DEFAULT_RETENTION_AUDIT_DAYS = 365.0
DEFAULT_RETENTION_ROLLUPS_DAYS = 400.0
DEFAULT_RETENTION_HEARTBEATS_DAYS = 7.0
DEFAULT_RETENTION_WEBHOOKS_DAYS = 30.0
DEFAULT_PRUNE_INTERVAL_SECONDS = 300.0
DEFAULT_PRUNE_BATCH_ROWS = 1000
DEFAULT_PRUNE_PAUSE_SECONDS = 0.05
DEFAULT_PRUNE_MAX_SECONDS = 60.0
# discovery: which inferred edges a candidate keeps (see pystator.discovery.InferenceThresholds)
DEFAULT_DISCOVERY_MIN_EDGE_COUNT = 2
DEFAULT_DISCOVERY_MIN_CONFIDENCE = 0.05
CONFIG_FILE_NAME = "pystator.cfg"
ENV_PREFIX = "PYSTATOR_"
SCHEDULERS = ("db", "redis", "celery", "asyncio")
JWT_ALGORITHMS = ("HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "ES256", "ES384", "PS256")


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """Typed, frozen runtime settings (see the README's Configuration section)."""

    database_url: str = DEFAULT_DATABASE_URL
    broker_url: str = DEFAULT_BROKER_URL
    redis_url: str | None = None
    machines: str | None = None  # a directory or a file of machine definitions
    app: str | None = None  # "module:factory" returning guards/actions registries
    scheduler: str = DEFAULT_SCHEDULER
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    max_context_bytes: int = DEFAULT_MAX_CONTEXT_BYTES
    relay_interval_seconds: float = DEFAULT_RELAY_INTERVAL_SECONDS
    retry_base_seconds: float = DEFAULT_RETRY_BASE_SECONDS
    retry_max_seconds: float = DEFAULT_RETRY_MAX_SECONDS
    log_format: str = "auto"  # auto|json|console
    queue: str = "pystator"  # Celery queue the fleet's nudges travel on
    timer_poll_seconds: float = DEFAULT_TIMER_POLL_SECONDS  # db/redis: how often pollers look
    timer_recovery_seconds: float = DEFAULT_TIMER_RECOVERY_SECONDS  # redis/celery: sweep delay
    timer_horizon_seconds: float = DEFAULT_TIMER_HORIZON_SECONDS  # celery: ETA publish window
    max_context_depth: int = DEFAULT_MAX_CONTEXT_DEPTH  # nesting levels of a submitted context
    max_entity_context_bytes: int = DEFAULT_MAX_ENTITY_CONTEXT_BYTES  # merged context cap
    batch_max_bytes: int = DEFAULT_BATCH_MAX_BYTES  # stored context bytes one batch loads
    batch_entities: int = DEFAULT_BATCH_ENTITIES  # entities one worker transaction claims
    # due events of one entity applied in one transaction (the rest wait for the next round)
    batch_events_per_entity: int = DEFAULT_BATCH_EVENTS_PER_ENTITY
    db_pool_size: int = 0  # connections per process; 0 derives it from the concurrency
    heartbeat_seconds: float = DEFAULT_HEARTBEAT_SECONDS
    stall_seconds: float = DEFAULT_STALL_SECONDS  # pystator health: no progress for this long
    statement_timeout_seconds: float = DEFAULT_STATEMENT_TIMEOUT_SECONDS  # PostgreSQL
    idle_in_transaction_timeout_seconds: float = DEFAULT_IDLE_IN_TRANSACTION_TIMEOUT_SECONDS
    action_timeout_seconds: float = DEFAULT_ACTION_TIMEOUT_SECONDS
    action_max_attempts: int = DEFAULT_ACTION_MAX_ATTEMPTS
    action_retry_base_seconds: float = DEFAULT_ACTION_RETRY_BASE_SECONDS
    action_retry_max_seconds: float = DEFAULT_ACTION_RETRY_MAX_SECONDS
    action_threads: int = DEFAULT_ACTION_THREADS  # threads per process running timed actions
    # how often a process looks for new machine versions in the database registry
    registry_refresh_seconds: float = DEFAULT_REGISTRY_REFRESH_SECONDS
    # a process publishes no nudges while the broker's queue holds this many (0: no bound);
    # the queue then holds at most this plus 16 per publishing process (see fleet.nudge_gate)
    nudge_queue_max: int = DEFAULT_NUDGE_QUEUE_MAX
    # seconds a worker, relay or API process waits for its database at start-up (0: fail)
    startup_timeout_seconds: float = DEFAULT_STARTUP_TIMEOUT_SECONDS
    # the worker process; the names are the public package's ``PYSTATOR_WORKER_*`` variables
    worker_concurrency: int = DEFAULT_WORKER_CONCURRENCY  # drain threads / Celery slots
    worker_poll_interval_ms: int = DEFAULT_WORKER_POLL_INTERVAL_MS  # embedded drain loops
    worker_drain_timeout_s: float = DEFAULT_WORKER_DRAIN_TIMEOUT_S  # in-flight work on shutdown
    # ``db``: the database registry only; ``yaml``: also ``machines``; unset: ``yaml`` when
    # ``machines`` is set
    worker_machine_source: str | None = None
    worker_id: str | None = None  # this worker process's id (default: host:pid:random)
    # the public package's DLQ variables: dead letters are rows of ``worker_events`` (status
    # ``dead``), so only values that say so are accepted (see ``_check_dlq``)
    worker_dlq_enabled: bool = True
    worker_dlq_database_url: str | None = None
    worker_dlq_table_name: str | None = None
    # the HTTP API (``pystator api``)
    api_host: str = DEFAULT_API_HOST
    api_port: int = DEFAULT_API_PORT
    api_jwt_secret: str | None = None  # HS256 shared secret
    api_jwt_public_key: str | None = None  # PEM text, or a path to a PEM file (RS256/ES256)
    api_jwt_algorithm: str | None = None  # default HS256 with a secret, RS256 with a public key
    api_jwt_audience: str | None = None
    api_jwt_issuer: str | None = None
    api_db_pool_size: int = DEFAULT_API_DB_POOL_SIZE  # connections per API process, all told
    api_max_body_bytes: int = DEFAULT_API_MAX_BODY_BYTES
    api_max_batch: int = DEFAULT_API_MAX_BATCH  # events per POST /api/v1/events/batch
    api_page_limit: int = DEFAULT_API_PAGE_LIMIT  # largest ``limit`` of a listing
    api_bulk_limit: int = DEFAULT_API_BULK_LIMIT  # most events one retry/discard call changes
    api_secure_cookies: bool = False  # dashboard cookies Secure even over plain HTTP (a proxy)
    # more ``Host`` names (comma-separated, no port) that mean this machine while auth is off,
    # besides localhost, 127.0.0.1 and [::1] (e.g. a name /etc/hosts maps to 127.0.0.1)
    api_local_hosts: str | None = None
    # retention: rows older than their window are pruned (0 = keep forever)
    retention_completed_days: float = DEFAULT_RETENTION_COMPLETED_DAYS  # completed, stale events
    # rejected, cancelled and discarded events, and refused idempotency keys
    retention_rejected_days: float = DEFAULT_RETENTION_REJECTED_DAYS
    retention_history_days: float = DEFAULT_RETENTION_HISTORY_DAYS  # transition_history
    retention_actions_days: float = DEFAULT_RETENTION_ACTIONS_DAYS  # done/discarded outbox rows
    retention_audit_days: float = DEFAULT_RETENTION_AUDIT_DAYS  # audit_log
    retention_rollups_days: float = DEFAULT_RETENTION_ROLLUPS_DAYS  # event_rollups (charts)
    # worker_heartbeats rows of processes that stopped beating (restarted pods leave one each)
    retention_heartbeats_days: float = DEFAULT_RETENTION_HEARTBEATS_DAYS
    # webhook_deliveries: the finished ones (delivered, dropped, given up), never those retried
    retention_webhooks_days: float = DEFAULT_RETENTION_WEBHOOKS_DAYS
    # the pruner: how often a worker runs a pass (0 = never: cron runs ``pystator prune``)
    prune_interval_seconds: float = DEFAULT_PRUNE_INTERVAL_SECONDS
    prune_batch_rows: int = DEFAULT_PRUNE_BATCH_ROWS  # rows one delete transaction removes
    prune_pause_seconds: float = DEFAULT_PRUNE_PAUSE_SECONDS  # between two batches
    prune_max_seconds: float = DEFAULT_PRUNE_MAX_SECONDS  # a worker's pass stops after this
    prune_archive_dir: str | None = None  # JSON lines of every pruned row are written here first
    # discovery: its own database (unset: database_url), shadow comparisons, edge thresholds
    discovery_database_url: str | None = None
    discovery_shadow_enabled: bool = False
    discovery_min_edge_count: int = DEFAULT_DISCOVERY_MIN_EDGE_COUNT
    discovery_min_confidence: float = DEFAULT_DISCOVERY_MIN_CONFIDENCE

    def __post_init__(self) -> None:
        if self.scheduler not in SCHEDULERS:
            raise SettingsError(
                f"PYSTATOR_SCHEDULER={self.scheduler!r}: expected one of {', '.join(SCHEDULERS)}"
            )
        if self.scheduler == "redis" and not self.redis_url:
            raise SettingsError("PYSTATOR_SCHEDULER=redis needs PYSTATOR_REDIS_URL")
        if self.log_format not in ("auto", "json", "console"):
            raise SettingsError(
                f"PYSTATOR_LOG_FORMAT={self.log_format!r}: expected auto, json or console"
            )
        for name in _POSITIVE_NUMBERS:
            if getattr(self, name) <= 0:
                raise SettingsError(f"{variable(name)} must be a positive number")
        for name in _POSITIVE_INTEGERS:
            if getattr(self, name) < 1:
                raise SettingsError(f"{variable(name)} must be a positive integer")
        for name in _NON_NEGATIVE_NUMBERS:
            if getattr(self, name) < 0:
                raise SettingsError(f"{variable(name)} must be 0 or a positive number")
        self._check_worker()
        for name in self.local_host_names:
            if not is_host_name(name):
                raise SettingsError(
                    f"PYSTATOR_API_LOCAL_HOSTS: {name!r} is not a host name; expected "
                    "comma-separated names such as 'devbox.internal' or '[::1]', without "
                    "scheme, port or wildcard"
                )
        if not 0.0 <= self.discovery_min_confidence <= 1.0:
            raise SettingsError("PYSTATOR_DISCOVERY_MIN_CONFIDENCE must be a number from 0 to 1")
        if self.db_pool_size < 0:
            raise SettingsError("PYSTATOR_DB_POOL_SIZE must be 0 (derive) or a positive integer")
        if self.api_db_pool_size < API_AUTOCOMMIT_CONNECTIONS + 1:
            raise SettingsError(
                f"PYSTATOR_API_DB_POOL_SIZE must be at least {API_AUTOCOMMIT_CONNECTIONS + 1} "
                f"({API_AUTOCOMMIT_CONNECTIONS} for single submits, the rest for everything else)"
            )
        if self.api_jwt_algorithm is not None and self.api_jwt_algorithm not in JWT_ALGORITHMS:
            raise SettingsError(
                f"PYSTATOR_API_JWT_ALGORITHM={self.api_jwt_algorithm!r}: expected one of "
                + ", ".join(JWT_ALGORITHMS)
            )

    def _check_worker(self) -> None:
        source = self.worker_machine_source
        if source is not None and source not in MACHINE_SOURCES:
            raise SettingsError(
                f"PYSTATOR_WORKER_MACHINE_SOURCE={source!r}: expected one of "
                + ", ".join(MACHINE_SOURCES)
            )
        if source == "yaml" and not self.machines:
            raise SettingsError(
                "PYSTATOR_WORKER_MACHINE_SOURCE=yaml needs PYSTATOR_MACHINES "
                "(or PYSTATOR_WORKER_MACHINE_DIR): the directory of machine files"
            )
        if self.worker_id is not None and not self.worker_id.strip():
            raise SettingsError("PYSTATOR_WORKER_ID must not be blank")
        self._check_dlq()
        if self.worker_id is not None and len(self.worker_id) > WORKER_ID_MAX_LENGTH:
            raise SettingsError(
                f"PYSTATOR_WORKER_ID is {len(self.worker_id)} characters long; "
                f"at most {WORKER_ID_MAX_LENGTH} fit"
            )

    def _check_dlq(self) -> None:
        """Dead letters are rows of ``worker_events`` (status ``dead``) in the main database:
        a DLQ setting asking for anything else cannot work, so it is refused here."""
        where = (
            "dead letters are rows of the worker_events table (status 'dead') in "
            "PYSTATOR_DATABASE_URL; list them with `pystator events list --status dead` or "
            "GET /api/v1/events?status=dead"
        )
        if not self.worker_dlq_enabled:
            raise SettingsError(
                f"PYSTATOR_WORKER_DLQ_ENABLED=false cannot be honoured: {where}, and an event "
                "past its max_attempts always becomes one; unset the variable"
            )
        url = self.worker_dlq_database_url
        if url is not None and url != self.database_url:
            raise SettingsError(
                f"PYSTATOR_WORKER_DLQ_DATABASE_URL names another database: {where}; "
                "unset it (or set it to PYSTATOR_DATABASE_URL)"
            )
        table = self.worker_dlq_table_name
        if table is not None and table != DEAD_LETTER_TABLE:
            raise SettingsError(
                f"PYSTATOR_WORKER_DLQ_TABLE_NAME={table!r} cannot be honoured: {where}; "
                f"unset it (or set it to {DEAD_LETTER_TABLE!r})"
            )

    @property
    def local_host_names(self) -> tuple[str, ...]:
        """``PYSTATOR_API_LOCAL_HOSTS`` as lower-cased names (empty when unset)."""
        raw = self.api_local_hosts or ""
        return tuple(name.strip().lower() for name in raw.split(",")) if raw.strip() else ()

    @property
    def discovery_url(self) -> str:
        """The discovery store's database: ``discovery_database_url``, else ``database_url``."""
        return self.discovery_database_url or self.database_url

    @property
    def machine_files(self) -> str | None:
        """The machine definitions to load from files: ``machines``, unless the machine source
        is ``db`` (the database registry only)."""
        return None if self.worker_machine_source == "db" else self.machines


_POSITIVE_NUMBERS = (
    "timer_poll_seconds",
    "timer_recovery_seconds",
    "timer_horizon_seconds",
    "relay_interval_seconds",
    "retry_base_seconds",
    "retry_max_seconds",
    "heartbeat_seconds",
    "stall_seconds",
    "statement_timeout_seconds",
    "idle_in_transaction_timeout_seconds",
    "action_timeout_seconds",
    "action_retry_base_seconds",
    "action_retry_max_seconds",
    "registry_refresh_seconds",
    "prune_max_seconds",
    "worker_drain_timeout_s",
)
#: Settings where 0 means "never" / "forever" / "no pause".
_NON_NEGATIVE_NUMBERS = (
    "retention_completed_days",
    "retention_rejected_days",
    "retention_history_days",
    "retention_actions_days",
    "retention_audit_days",
    "retention_rollups_days",
    "retention_heartbeats_days",
    "retention_webhooks_days",
    "prune_interval_seconds",
    "prune_pause_seconds",
    "nudge_queue_max",
    "startup_timeout_seconds",
)
_POSITIVE_INTEGERS = (
    "max_attempts",
    "max_context_bytes",
    "max_context_depth",
    "max_entity_context_bytes",
    "batch_max_bytes",
    "batch_entities",
    "batch_events_per_entity",
    "action_max_attempts",
    "action_threads",
    "api_port",
    "api_max_body_bytes",
    "api_max_batch",
    "api_page_limit",
    "api_bulk_limit",
    "prune_batch_rows",
    "worker_concurrency",
    "worker_poll_interval_ms",
    "discovery_min_edge_count",
)
#: Where dead letters live: rows of this table with status ``dead`` (the DLQ settings' answer).
DEAD_LETTER_TABLE = "worker_events"
#: Settings whose values are never printed (``pystator config show`` masks them).
SECRET_SETTINGS = frozenset({"api_jwt_secret"})
#: Settings holding URLs whose password is masked when printed.
URL_SETTINGS = frozenset(
    {"database_url", "broker_url", "redis_url", "discovery_database_url", "worker_dlq_database_url"}
)
#: Second names a setting is also read under: the public package's worker variables that mean
#: the same thing as one of ours (``PYSTATOR_WORKER_DB_URL`` is ``PYSTATOR_DATABASE_URL``).
ALIASES = {
    "database_url": "worker_db_url",
    "max_attempts": "worker_max_attempts",
    "machines": "worker_machine_dir",
}
#: Connections of the autocommit companion engine an API process also holds (single submits).
API_AUTOCOMMIT_CONNECTIONS = 2


_HOST_LABEL = re.compile(r"(?!-)[a-z0-9_-]{1,63}(?<!-)")


def is_host_name(name: str) -> bool:
    """True for a lower-case DNS name or IPv4 address, or a bracketed IPv6 address (no port)."""
    if name.startswith("[") and name.endswith("]"):
        try:
            return ipaddress.ip_address(name[1:-1]).version == 6
        except ValueError:
            return False
    return 0 < len(name) <= 253 and all(_HOST_LABEL.fullmatch(p) for p in name.split("."))


def variable(name: str) -> str:
    """The variable a setting is read from (with its alias, when it has one)."""
    alias = ALIASES.get(name)
    main = ENV_PREFIX + name.upper()
    return f"{main} (or {ENV_PREFIX + alias.upper()})" if alias else main


def _convert(env_name: str, raw: str, kind: object) -> object:
    try:
        if kind in (int, "int"):
            return int(raw)
        if kind in (float, "float"):
            return float(raw)
    except ValueError:
        raise SettingsError(f"{env_name}={raw!r}: expected a number") from None
    if kind in (bool, "bool"):
        lowered = raw.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise SettingsError(f"{env_name}={raw!r}: expected true or false")
    return raw


def _file_values(path: Path) -> dict[str, str]:
    """Settings from an INI file: the ``[pystator]`` section with bare names (``database_url``),
    the ``[discovery]`` section with names of discovery settings without their ``discovery_``
    (``min_edge_count``), and in any section names with the prefix (``PYSTATOR_DATABASE_URL``,
    the public package's layout with ``[database]``, ``[auth]``, … sections)."""
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(path)
    except configparser.Error as exc:
        raise SettingsError(f"{path}: {exc}") from exc
    values: dict[str, str] = {}
    prefix = ENV_PREFIX.lower()
    for section in parser.sections():
        for key, value in parser.items(section):
            if key.startswith(prefix):
                values[key[len(prefix) :]] = value
            elif section == "pystator":
                values[key] = value
            elif section == "discovery":
                values[f"discovery_{key}"] = value
    return values


def _sources(
    environ: Mapping[str, str] | None, config_file: str | Path | None
) -> dict[str, tuple[str, str, str]]:
    """Raw value, source (``env`` or the file's path) and the variable it was read under, of
    every setting that is set."""
    env = os.environ if environ is None else environ
    path = Path(config_file or env.get(ENV_PREFIX + "CONFIG", CONFIG_FILE_NAME))
    file_values = _file_values(path) if path.is_file() else {}
    found: dict[str, tuple[str, str, str]] = {}
    for f in fields(Settings):
        names = [f.name] + ([ALIASES[f.name]] if f.name in ALIASES else [])
        for values, source in ((env, "env"), (file_values, str(path))):
            given = {n: str(values[n_key]) for n, n_key in _keys(names, values, source)}
            if given:
                found[f.name] = _one_value(given, source)
                break
    return found


def _keys(names: list[str], values: Mapping[str, str], source: str) -> list[tuple[str, str]]:
    """``(name, key in values)`` of the names set (non-empty) in ``values``."""
    keyed = [(n, ENV_PREFIX + n.upper() if source == "env" else n) for n in names]
    return [(n, key) for n, key in keyed if values.get(key) not in (None, "")]


def _one_value(given: dict[str, str], source: str) -> tuple[str, str, str]:
    """The value of a setting set under one or both of its names; both must agree."""
    if len(set(given.values())) > 1:
        both = " and ".join(ENV_PREFIX + n.upper() for n in given)
        raise SettingsError(f"{both} are two names of one setting but differ ({source}): set one")
    name, raw = next(iter(given.items()))
    return raw, source, ENV_PREFIX + name.upper()


def load_settings(
    environ: Mapping[str, str] | None = None,
    config_file: str | Path | None = None,
) -> Settings:
    """Build :class:`Settings` from the environment, ``pystator.cfg`` and defaults."""
    kinds = {f.name: f.type for f in fields(Settings)}
    values = {
        name: _convert(env_name, raw, kinds[name])
        for name, (raw, _source, env_name) in _sources(environ, config_file).items()
    }
    return Settings(**values)  # type: ignore[arg-type]


def describe_settings(
    environ: Mapping[str, str] | None = None,
    config_file: str | Path | None = None,
) -> list[tuple[str, str, str]]:
    """``(PYSTATOR_NAME, value, source)`` for every setting, secrets masked (source is ``env``,
    the config file's path, or ``default``) — what ``pystator config show`` prints."""
    settings = load_settings(environ, config_file)
    sources = _sources(environ, config_file)
    rows = []
    for f in fields(Settings):
        value = getattr(settings, f.name)
        rows.append(
            (
                ENV_PREFIX + f.name.upper(),
                mask(f.name, value),
                sources.get(f.name, ("", "default"))[1],
            )
        )
    return rows


def mask(name: str, value: object) -> str:
    """A setting's value fit to print: secrets as ``***``, URL passwords as ``***``."""
    if value is None:
        return ""
    if name in SECRET_SETTINGS:
        return "***"
    text = str(value)
    if name in URL_SETTINGS:
        parts = urlsplit(text)
        if parts.password:
            netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
            return urlunsplit(parts._replace(netloc=netloc))
    return text
