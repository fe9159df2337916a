"""``pystator.http_action``: the built-in ``http`` action under its documented import path."""

from __future__ import annotations

from pystator.plugins.http import (
    DEFAULT_HTTP_TIMEOUT_SECONDS,
    MAX_RESPONSE_BYTES,
    http_action,
    render,
)

__all__ = ["DEFAULT_HTTP_TIMEOUT_SECONDS", "MAX_RESPONSE_BYTES", "http_action", "render"]
