"""Built-in guards and actions (and the ``http`` action), on registries you keep extending."""

from __future__ import annotations

from pystator.fsm_core.actions import ActionRegistry
from pystator.fsm_core.builtins import (
    BUILTIN_ACTIONS,
    BUILTIN_GUARDS,
    CatalogEntry,
    builtin_catalog,
)
from pystator.fsm_core.builtins import register_builtins as _register_core
from pystator.fsm_core.guards import GuardRegistry
from pystator.plugins.http import http_action

HTTP_ACTION = "http"


def register_builtins(
    guards: GuardRegistry | None = None, actions: ActionRegistry | None = None
) -> tuple[GuardRegistry, ActionRegistry]:
    """Add every built-in, ``http`` included, to the registries (new ones when None); names
    already registered are left alone."""
    guards, actions = _register_core(guards, actions)
    if HTTP_ACTION not in actions:
        actions.register(HTTP_ACTION, http_action)
    return guards, actions


def builtin_registries() -> tuple[GuardRegistry, ActionRegistry]:
    """Fresh guard and action registries holding every built-in."""
    return register_builtins()


def get_builtin_catalog() -> list[CatalogEntry]:
    """Every built-in guard and action with a one-line description."""
    entries = builtin_catalog()
    entries.append(
        CatalogEntry(
            kind="action", name=HTTP_ACTION, description="One HTTP request ({http: …} entries)."
        )
    )
    return entries


__all__ = [
    "BUILTIN_ACTIONS",
    "BUILTIN_GUARDS",
    "HTTP_ACTION",
    "CatalogEntry",
    "builtin_registries",
    "get_builtin_catalog",
    "register_builtins",
]
