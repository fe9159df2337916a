"""Structured logging for the worker fleet (structlog): the one place it is configured.

Lines are JSON when stderr is not a terminal (or ``PYSTATOR_LOG_FORMAT=json``), coloured
key/value pairs on a terminal. Every line about an event carries ``event_id``, ``machine``,
``entity_id``, ``trigger``, ``attempt`` and ``outcome``.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING}


def configure_logging(log_format: str = "auto", level: str = "info") -> None:
    """Configure structlog for this process (call once at start-up)."""
    use_json = log_format == "json" or (log_format == "auto" and not sys.stderr.isatty())
    renderer: Any = (
        structlog.processors.JSONRenderer() if use_json else structlog.dev.ConsoleRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info if use_json else _passthrough,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(LEVELS.get(level, logging.INFO)),
        logger_factory=structlog.WriteLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )


def _passthrough(_logger: Any, _name: str, event_dict: Any) -> Any:
    return event_dict


def get_logger(name: str) -> Any:
    """A structlog logger tagged with ``logger_name=name``."""
    return structlog.get_logger(logger_name=name)


__all__ = ["configure_logging", "get_logger"]


if not structlog.is_configured():  # pystator's defaults until the application configures its own
    configure_logging()
