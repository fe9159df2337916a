"""``pystator.worker.config``: :class:`WorkerConfig` under its documented import path."""

from __future__ import annotations

from pystator.fleet.config import WorkerConfig

__all__ = ["WorkerConfig"]
