"""The ASGI app for servers: ``uvicorn pystator.api.main:app`` (settings from the environment
and ``pystator.cfg``, read at start-up)."""

from __future__ import annotations

from pystator.api.app import create_app

app = create_app()

__all__ = ["app"]
