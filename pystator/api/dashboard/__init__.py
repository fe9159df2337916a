"""The operations dashboard, served by ``pystator api`` under ``/ui``: server-rendered pages
(Jinja2) over the same operations as the API and the CLI, with vendored htmx, uPlot and Mermaid
(``static/vendor/VENDORED.md``) — nothing fetched from the internet, no Node build.

:func:`install` mounts the pages and the static files on an app.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles

from pystator.api.dashboard.pages import PAGES
from pystator.api.dashboard.render import STATIC, UI_PREFIX, error_page

#: ``(prefix, renderer)``: the area whose errors are pages, for :func:`pystator.api.problems.install`.
HTML_ERRORS = ((UI_PREFIX, error_page),)


def install(app: FastAPI) -> None:
    """Mount the pages under ``/ui``, ``/ui/static`` and a redirect from ``/ui/`` on ``app``."""
    for pages in PAGES:
        app.include_router(pages, prefix=UI_PREFIX, include_in_schema=False)

    @app.get(UI_PREFIX + "/", include_in_schema=False)
    def _slash() -> RedirectResponse:
        return RedirectResponse(UI_PREFIX, status_code=307)

    app.mount(UI_PREFIX + "/static", StaticFiles(directory=STATIC), name="ui-static")


__all__ = ["HTML_ERRORS", "install"]
