"""Default local ports (overridable with ``PYSTATOR_API_PORT`` / ``pystator.cfg``, see
:mod:`pystator.config.settings`). The dashboard is served by the API process, on the same port."""

from __future__ import annotations

from pystator.config.settings import DEFAULT_API_PORT

#: ``pystator api`` (REST API and dashboard).
API_PORT: int = DEFAULT_API_PORT
#: The dashboard (``/ui``) is part of the API server.
UI_PORT: int = DEFAULT_API_PORT

__all__ = ["API_PORT", "UI_PORT"]
