"""Runtime settings: environment first, then an optional ``pystator.cfg``, then defaults.

This is the only module that reads ``os.environ``; everything else receives a frozen
:class:`Settings`. Invalid values fail fast with the setting's name and the accepted forms.
"""

from __future__ import annotations

import configparser
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path

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
DEFAULT_HEARTBEAT_SECONDS = 5.0
DEFAULT_STALL_SECONDS = 60.0
DEFAULT_STATEMENT_TIMEOUT_SECONDS = 30.0
DEFAULT_IDLE_IN_TRANSACTION_TIMEOUT_SECONDS = 60.0
DEFAULT_ACTION_TIMEOUT_SECONDS = 30.0
DEFAULT_ACTION_MAX_ATTEMPTS = 20
DEFAULT_ACTION_RETRY_BASE_SECONDS = 1.0
DEFAULT_ACTION_RETRY_MAX_SECONDS = 3600.0
CONFIG_FILE_NAME = "pystator.cfg"
ENV_PREFIX = "PYSTATOR_"
SCHEDULERS = ("db", "redis", "celery", "asyncio")


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
    db_pool_size: int = 0  # connections per process; 0 derives it from the concurrency
    heartbeat_seconds: float = DEFAULT_HEARTBEAT_SECONDS
    stall_seconds: float = DEFAULT_STALL_SECONDS  # pystator health: no progress for this long
    statement_timeout_seconds: float = DEFAULT_STATEMENT_TIMEOUT_SECONDS  # PostgreSQL
    idle_in_transaction_timeout_seconds: float = DEFAULT_IDLE_IN_TRANSACTION_TIMEOUT_SECONDS
    action_timeout_seconds: float = DEFAULT_ACTION_TIMEOUT_SECONDS
    action_max_attempts: int = DEFAULT_ACTION_MAX_ATTEMPTS
    action_retry_base_seconds: float = DEFAULT_ACTION_RETRY_BASE_SECONDS
    action_retry_max_seconds: float = DEFAULT_ACTION_RETRY_MAX_SECONDS

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
                raise SettingsError(f"PYSTATOR_{name.upper()} must be a positive number")
        for name in _POSITIVE_INTEGERS:
            if getattr(self, name) < 1:
                raise SettingsError(f"PYSTATOR_{name.upper()} must be a positive integer")
        if self.db_pool_size < 0:
            raise SettingsError("PYSTATOR_DB_POOL_SIZE must be 0 (derive) or a positive integer")


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
)
_POSITIVE_INTEGERS = (
    "max_attempts",
    "max_context_bytes",
    "max_context_depth",
    "max_entity_context_bytes",
    "batch_max_bytes",
    "action_max_attempts",
)


def _convert(name: str, raw: str, kind: object) -> object:
    env_name = ENV_PREFIX + name.upper()
    try:
        if kind in (int, "int"):
            return int(raw)
        if kind in (float, "float"):
            return float(raw)
    except ValueError:
        raise SettingsError(f"{env_name}={raw!r}: expected a number") from None
    return raw


def load_settings(
    environ: Mapping[str, str] | None = None,
    config_file: str | Path | None = None,
) -> Settings:
    """Build :class:`Settings` from the environment, ``pystator.cfg`` and defaults."""
    env = os.environ if environ is None else environ
    values: dict[str, object] = {}
    path = Path(config_file or env.get(ENV_PREFIX + "CONFIG", CONFIG_FILE_NAME))
    file_values: dict[str, str] = {}
    if path.is_file():
        parser = configparser.ConfigParser()
        try:
            parser.read(path)
        except configparser.Error as exc:
            raise SettingsError(f"{path}: {exc}") from exc
        if parser.has_section("pystator"):
            file_values = dict(parser.items("pystator"))
    for f in fields(Settings):
        raw = env.get(ENV_PREFIX + f.name.upper(), file_values.get(f.name))
        if raw is None or raw == "":
            continue
        values[f.name] = _convert(f.name, raw, f.type)
    return Settings(**values)  # type: ignore[arg-type]
