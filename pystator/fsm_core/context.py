"""``TransitionContext``: the context dict with typed access to the keys pystator adds.

Keys starting with ``_`` are pystator's: ``_entity_id`` (set by the Orchestrator for actions),
``_event`` (an event object, when a caller provides one) and ``_pystator`` (the worker fleet's
action token: action id, event id, entity, version, attempt). Everything else is the user's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

ENTITY_ID_KEY = "_entity_id"
EVENT_KEY = "_event"
TOKEN_KEY = "_pystator"


class TransitionContext(dict[str, Any]):
    """A ``dict`` subclass; wrap any context to read pystator's keys by name."""

    @property
    def event(self) -> Any:
        """The ``_event`` object, if the caller put one in the context."""
        return self.get(EVENT_KEY)

    @property
    def entity_id(self) -> str | None:
        """The entity being processed (Orchestrator: ``_entity_id``; fleet: its action token)."""
        value = self.get(ENTITY_ID_KEY)
        if value is None:
            token = self.get(TOKEN_KEY)
            if isinstance(token, Mapping):
                value = token.get("entity_id")
        return None if value is None else str(value)

    def user_data(self) -> dict[str, Any]:
        """Every key that does not start with ``_``."""
        return {k: v for k, v in self.items() if not (isinstance(k, str) and k.startswith("_"))}
