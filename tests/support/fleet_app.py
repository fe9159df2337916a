"""Guards and actions of the fleet fault-test machine (``tests/fixtures/fleet/fleet_cycle.yaml``).

Workers load it with ``--app tests.support.fleet_app:factory``. The ``log_action`` action appends
``(token, entity, event)`` to the test's ``action_log`` table in the worker's own database, so the
test can prove every outbox action ran at least once and count duplicate runs by token.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

import sqlalchemy as sa

from pystator import ActionRegistry, GuardRegistry

GuardFn = Callable[[Mapping[str, Any]], bool]
ActionSink = Callable[[Mapping[str, Any]], None]


class PoisonError(RuntimeError):
    """Raised by the ``fragile`` guard for poison events: a failure, retried then dead-lettered."""


def allowed(ctx: Mapping[str, Any]) -> bool:
    """``reset`` fires only when the event allows it (otherwise a business rejection)."""
    return bool(ctx.get("allow"))


def fragile(ctx: Mapping[str, Any]) -> bool:
    """``poke`` fires unless the event is poison, in which case the guard itself fails."""
    if ctx.get("poison"):
        raise PoisonError(f"poison event n={ctx.get('n')}")
    return True


def token_block(ctx: Mapping[str, Any]) -> Mapping[str, Any]:
    """The worker's dedup block: ``ctx["_pystator"]`` with ``action_id`` (the outbox row id)."""
    from pystator.context import TOKEN_KEY

    block: Mapping[str, Any] = ctx[TOKEN_KEY]
    return block


class ActionLog:
    """Inserts one ``action_log`` row per action run, in the worker's database."""

    def __init__(self, database_url: str) -> None:
        self._url = database_url
        self._engine: sa.Engine | None = None
        self._lock = threading.Lock()

    def engine(self) -> sa.Engine:
        with self._lock:
            if self._engine is None:
                self._engine = sa.create_engine(self._url, pool_size=4, max_overflow=8)
            return self._engine

    def __call__(self, ctx: Mapping[str, Any]) -> None:
        block = token_block(ctx)
        with self.engine().begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO action_log (token, entity_id, event_id, action) "
                    "VALUES (:token, :entity, :event, 'log_action')"
                ),
                {
                    "token": str(block["action_id"]),
                    "entity": block["entity_id"],
                    "event": block["event_id"],
                },
            )


def bind(machine: Any, action_sink: ActionSink | None) -> None:
    """Bind the guards (and the action, or a no-op) to ``machine`` directly (replay, unit use)."""
    guards, actions = registries(action_sink or (lambda _ctx: None))
    machine.bind_guards(guards)
    machine.bind_actions(actions)


def registries(action_sink: ActionSink) -> tuple[GuardRegistry, ActionRegistry]:
    guards = GuardRegistry()
    guards.register("allowed", allowed)
    guards.register("fragile", fragile)
    actions = ActionRegistry()
    actions.register("log_action", action_sink)
    return guards, actions


def factory() -> tuple[GuardRegistry, ActionRegistry]:
    """The ``--app`` factory: registries whose action logs into the worker's database."""
    from pystator.config.settings import load_settings

    return registries(ActionLog(load_settings().database_url))
