"""The built-in ``http`` action: one synchronous HTTP request per planned ``{http: …}`` entry.

``url``, header values and string leaves of ``body`` may hold ``{{ expression }}`` templates,
evaluated against the action's context with the same compiled, whitelisted language as ``expr:``
guards (``{{ order_id }}``, ``{{ qty * price }}``). A mapping or list ``body`` is sent as JSON.
``on_error: log`` logs a failed request and returns its description; ``raise`` (the default)
fails the action, so the executor's retries and the error policy apply. Only ``http://`` and
``https://`` URLs are requested.
"""

from __future__ import annotations

import json
import logging
import re
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any

from pystator.fsm_core.expressions import compile_value

HTTP_LOGGER = logging.getLogger("pystator.actions.http")
DEFAULT_HTTP_TIMEOUT_SECONDS = 10.0
MAX_RESPONSE_BYTES = 1_000_000
_TEMPLATE = re.compile(r"\{\{\s*(.+?)\s*\}\}")


def render(template: str, ctx: Mapping[str, Any]) -> str:
    """``template`` with every ``{{ expression }}`` replaced by its value (None → empty)."""

    def value(match: re.Match[str]) -> str:
        result = compile_value(match.group(1)).evaluate(ctx)
        return "" if result is None else str(result)

    return _TEMPLATE.sub(value, template)


def _render_body(body: Any, ctx: Mapping[str, Any]) -> Any:
    if isinstance(body, str):
        return render(body, ctx)
    if isinstance(body, Mapping):
        return {k: _render_body(v, ctx) for k, v in body.items()}
    if isinstance(body, list | tuple):
        return [_render_body(v, ctx) for v in body]
    return body


def http_action(
    ctx: Mapping[str, Any],
    *,
    url: str,
    method: str = "GET",
    headers: Mapping[str, str] | None = None,
    body: Any = None,
    on_error: str = "raise",
    timeout: float = DEFAULT_HTTP_TIMEOUT_SECONDS,
) -> dict[str, Any]:
    """Send the request; return ``{"status": …, "body": …}`` (or ``{"error": …}`` when logged)."""
    target = render(url, ctx)
    if not target.startswith(("http://", "https://")):
        raise ValueError(f"http action: refusing URL {target!r} (only http:// and https://)")
    sent_headers = {k: render(v, ctx) for k, v in (headers or {}).items()}
    data = None
    if body is not None:
        rendered = _render_body(body, ctx)
        if isinstance(rendered, str):
            data = rendered.encode()
        else:
            data = json.dumps(rendered).encode()
            sent_headers.setdefault("Content-Type", "application/json")
    request = urllib.request.Request(target, data=data, headers=sent_headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            text = response.read(MAX_RESPONSE_BYTES).decode(errors="replace")
            return {"status": response.status, "body": text}
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        if isinstance(exc, urllib.error.HTTPError):
            exc.close()  # an error response is still an open response
        if on_error != "log":
            raise
        HTTP_LOGGER.warning("http action %s %s failed: %s", method, target, exc)
        status = exc.code if isinstance(exc, urllib.error.HTTPError) else None
        return {"status": status, "error": str(exc)}


__all__ = ["DEFAULT_HTTP_TIMEOUT_SECONDS", "MAX_RESPONSE_BYTES", "http_action", "render"]
