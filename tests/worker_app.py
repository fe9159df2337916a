"""``--app tests.worker_app:factory`` for worker subprocess tests (guards and actions of wtest)."""

from __future__ import annotations

from pystator import ActionRegistry, GuardRegistry
from tests.worker_support import Hooks


def factory() -> tuple[GuardRegistry, ActionRegistry]:
    """The ``fragile`` guard and ``record`` action of :class:`tests.worker_support.Hooks`."""
    return Hooks().registries()
