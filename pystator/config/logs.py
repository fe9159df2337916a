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

LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}


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
        logger_factory=_StderrLoggerFactory(),
        cache_logger_on_first_use=False,
    )


class _StderrLogger:
    """Writes each line to the *current* ``sys.stderr``.

    Looking the stream up per line (instead of binding it at configuration time) keeps logging
    from background threads working when the stream is swapped (pytest capture, daemons), and a
    stream already closed at shutdown drops the line instead of killing the calling thread.
    """

    def msg(self, message: str) -> None:
        stream = sys.stderr
        try:
            stream.write(message + "\n")
            stream.flush()
        except (ValueError, OSError):  # closed at interpreter or test teardown: nowhere to write
            return

    log = debug = info = warning = warn = error = critical = exception = fatal = msg


class _StderrLoggerFactory:
    def __call__(self, *args: Any) -> _StderrLogger:
        return _StderrLogger()


def _passthrough(_logger: Any, _name: str, event_dict: Any) -> Any:
    return event_dict


def get_logger(name: str) -> Any:
    """A structlog logger tagged with ``logger_name=name``."""
    return structlog.get_logger(logger_name=name)


__all__ = ["configure_logging", "get_logger"]


if not structlog.is_configured():  # pystator's defaults until the application configures its own
    configure_logging()
