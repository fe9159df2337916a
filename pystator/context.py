"""``TransitionContext``: typed access to the ``_``-prefixed keys pystator puts in a context."""

from __future__ import annotations

from pystator.fsm_core.context import ENTITY_ID_KEY, EVENT_KEY, TOKEN_KEY, TransitionContext

__all__ = ["ENTITY_ID_KEY", "EVENT_KEY", "TOKEN_KEY", "TransitionContext"]
