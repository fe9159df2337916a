"""Every built-in guard and action (the engine's and the ``http`` action), registered by name on
registries you keep extending: the one place built-ins are registered."""

from __future__ import annotations

from pystator.fsm_core.actions import ActionRegistry
from pystator.fsm_core.builtins import (
    BUILTIN_ACTIONS,
    BUILTIN_GUARDS,
    CatalogEntry,
    builtin_catalog,
    sink_actions,
)
from pystator.fsm_core.guards import GuardRegistry
from pystator.plugins.http import http_action

HTTP_ACTION = "http"


def register_builtins(
    guards: GuardRegistry | None = None, actions: ActionRegistry | None = None
) -> tuple[GuardRegistry, ActionRegistry]:
    """Add every built-in, ``http`` included, to the registries (new ones when None); names
    already registered are left alone: user registrations win."""
    guards = guards if guards is not None else GuardRegistry()
    actions = actions if actions is not None else ActionRegistry()
    for name, fn in BUILTIN_GUARDS.items():
        if name not in guards:
            guards.register(name, fn)
    every_action = {**BUILTIN_ACTIONS, **sink_actions(), HTTP_ACTION: http_action}
    for name, action in every_action.items():
        if name not in actions:
            actions.register(name, action)
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
