"""The HTTP API (``pip install pystator[api]``): FastAPI routes over the same operations as the
command line (:mod:`pystator.services.admin`, the machine registry, the producer), with API key and
JWT auth, an audit log and one problem-JSON error shape."""

from __future__ import annotations

from pystator.api.app import create_app

__all__ = ["create_app"]
