"""``pystator.builtins``: the built-in guards and actions under their documented import path."""

from __future__ import annotations

from pystator.plugins.builtins import (
    BUILTIN_ACTIONS,
    BUILTIN_GUARDS,
    HTTP_ACTION,
    CatalogEntry,
    builtin_registries,
    get_builtin_catalog,
    register_builtins,
)

__all__ = [
    "BUILTIN_ACTIONS",
    "BUILTIN_GUARDS",
    "HTTP_ACTION",
    "CatalogEntry",
    "builtin_registries",
    "get_builtin_catalog",
    "register_builtins",
]
