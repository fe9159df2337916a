"""``--app tests.support.worker_app:factory`` for worker subprocess tests (guards and actions of wtest)."""

from __future__ import annotations

from pystator import ActionRegistry, GuardRegistry
from tests.support.worker import Hooks


def factory() -> tuple[GuardRegistry, ActionRegistry]:
    """The ``fragile`` guard and ``record`` action of :class:`tests.support.worker.Hooks`."""
    return Hooks().registries()
