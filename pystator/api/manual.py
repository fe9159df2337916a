"""``/manual``: the documentation site, as ``pystator docs`` builds it, served by the API.

The site is looked up on every request, so building it (``pystator docs --build-only``) while
the API runs is enough. Until it is built, ``/manual/`` answers 404 with a page that says how.
No auth: like ``/docs``, it is documentation.
"""

from __future__ import annotations

from starlette.responses import HTMLResponse
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send

from pystator.manual import ManualSources, find_sources

PATH = "/manual"

NOT_BUILT = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>pystator manual</title></head>
<body><h1>The manual is not built yet</h1>
<p>Build it from the checkout with <code>pystator docs --build-only</code> (or serve it on its
own with <code>pystator docs</code>), then reload this page.</p>
<p>The OpenAPI explorer of the HTTP routes is at <a href="/docs">/docs</a>.</p></body></html>
"""


class ManualFiles:
    """An ASGI app serving the built site, or the not-built page."""

    def __init__(self, sources: ManualSources | None) -> None:
        self.sources = sources
        self._files: StaticFiles | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        site = self.sources.site_dir if self.sources else None
        if site is None or not (site / "index.html").is_file():
            await HTMLResponse(NOT_BUILT, status_code=404)(scope, receive, send)
            return
        if self._files is None:
            self._files = StaticFiles(directory=site, html=True)
        await self._files(scope, receive, send)


def manual_app() -> ManualFiles:
    """The ``/manual`` app for the checkout this process runs from (if any)."""
    return ManualFiles(find_sources())
