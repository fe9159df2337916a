"""The documentation site on this machine: ``pystator docs`` and the API's ``/manual``.

The site is built with MkDocs from the sources of a checkout (``mkdocs.yml`` and ``docs/``),
into its ``site/`` folder, with no network: the theme's fonts are off and Mermaid is the
dashboard's vendored copy. :func:`ensure_built` builds it when it is missing or older than any
of its sources (the pages, the benchmark records, the package's docstrings).
"""

from __future__ import annotations

from pystator.manual.site import (
    DEFAULT_PORT,
    ManualError,
    ManualSources,
    build,
    ensure_built,
    find_sources,
    is_stale,
    serve,
)

__all__ = [
    "DEFAULT_PORT",
    "ManualError",
    "ManualSources",
    "build",
    "ensure_built",
    "find_sources",
    "is_stale",
    "serve",
]
