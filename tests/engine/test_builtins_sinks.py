"""Built-in guards and actions, the event/metric sinks, and ``TransitionContext``."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from pystator import (
    ActionExecutor,
    ActionRegistry,
    GuardRegistry,
    InMemoryStateStore,
    Orchestrator,
    StateMachine,
    TransitionContext,
    builtin_registries,
    configure_event_sink,
    configure_metric_sink,
    get_builtin_catalog,
    register_builtins,
)
from pystator.sinks import EventSink, LoggingEventSink, MetricSink


def shop(actions: list[Any], guards: list[Any] | None = None) -> StateMachine:
    return StateMachine.from_dict(
        {
            "meta": {"machine_name": "shop"},
            "states": [{"name": "cart", "type": "initial"}, {"name": "paid"}],
            "transitions": [
                {
                    "trigger": "pay",
                    "source": "cart",
                    "dest": "paid",
                    "actions": actions,
                    "guards": guards or [],
                }
            ],
        }
    )


def run(machine: StateMachine, context: dict[str, Any], registry: ActionRegistry) -> dict[str, Any]:
    result = machine.process("cart", "pay", context)
    ctx = dict(result.context or context)
    ActionExecutor(registry).execute(result, ctx)
    return ctx


def test_builtin_guards() -> None:
    guards, _ = builtin_registries()
    m = shop(
        [],
        [
            {"name": "key_present", "params": {"key": "card"}},
            {"name": "key_absent", "params": {"keys": ["fraud"]}},
            "always",
        ],
    )
    m.bind_guards(guards)
    assert m.process("cart", "pay", {"card": "visa"}).success
    assert (
        m.process("cart", "pay", {"card": "visa", "fraud": 1}).metadata["guard_name"]
        == "key_absent"
    )
    never = shop([], ["never"])
    never.bind_guards(guards)
    assert not never.process("cart", "pay", {}).success


def test_context_builtins() -> None:
    _, actions = builtin_registries()
    m = shop(
        [
            "noop",
            {"name": "set_context", "params": {"channel": "web", "step": 2}},
            {"name": "copy_key", "params": {"from": "channel", "to": "last_channel"}},
            {"name": "copy_key", "params": {"from": "absent", "to": "never"}},
            {"name": "snapshot", "params": {"label": "before"}},
            "trace",
            {"name": "validate_keys", "params": {"required": ["order_id", "channel"]}},
        ]
    )
    ctx = run(m, {"order_id": None, "_internal": 1}, actions)
    assert ctx["channel"] == "web" and ctx["last_channel"] == "web" and "never" not in ctx
    assert ctx["_snapshots"] == [
        {
            "label": "before",
            "data": {"order_id": None, "channel": "web", "step": 2, "last_channel": "web"},
        }
    ]
    assert ctx["_trace"] == [{"order_id": None, "channel": "web", "step": 2, "last_channel": "web"}]
    assert ctx["_validation_errors"] == ["missing required key 'order_id'"]


def test_log_builtin(caplog: pytest.LogCaptureFixture) -> None:
    _, actions = builtin_registries()
    with caplog.at_level(logging.DEBUG, logger="pystator.actions"):
        run(
            shop([{"name": "log", "params": {"message": "paid!", "level": "warning"}}, "log"]),
            {"_entity_id": "o-9"},
            actions,
        )
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("WARNING", "paid!"),
        ("INFO", "transition of entity o-9"),
    ]


class Collected:
    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
        self.metrics: list[tuple[str, float, dict[str, str]]] = []

    def send(self, topic: str, payload: dict[str, Any], metadata: dict[str, Any]) -> None:
        self.events.append((topic, payload, metadata))

    def emit(self, name: str, value: float, tags: dict[str, str]) -> None:
        self.metrics.append((name, value, tags))


def test_sinks_receive_publish_and_emit_metric() -> None:
    sink = Collected()
    assert isinstance(sink, EventSink) and isinstance(sink, MetricSink)
    _, actions = builtin_registries()
    configure_event_sink(actions, sink)
    configure_metric_sink(actions, sink)
    m = shop(
        [
            {
                "name": "publish",
                "params": {"topic": "orders.paid", "include": ["order_id", "total"]},
            },
            {"name": "publish", "params": {"topic": "orders.all"}},
            {"name": "emit_metric", "params": {"name": "orders.paid", "tags": {"env": "test"}}},
            {
                "name": "emit_metric",
                "params": {"name": "orders.value", "value": 42, "type": "gauge"},
            },
        ]
    )
    store = InMemoryStateStore()
    Orchestrator(machine=m, state_store=store, actions=actions).process_event(
        "o-1", "pay", {"order_id": "o-1", "total": 42, "note": "x"}
    )
    (topic, payload, meta), (_, everything, _) = sink.events
    assert (topic, payload) == ("orders.paid", {"order_id": "o-1", "total": 42})
    assert everything == {"order_id": "o-1", "total": 42, "note": "x"}  # no _ keys
    assert meta["entity_id"] == "o-1" and meta["timestamp"].endswith("+00:00")
    assert sink.metrics == [
        ("orders.paid", 1.0, {"env": "test", "type": "counter"}),
        ("orders.value", 42.0, {"type": "gauge"}),
    ]


def test_default_sinks_log(caplog: pytest.LogCaptureFixture) -> None:
    _, actions = builtin_registries()
    with caplog.at_level(logging.INFO):
        run(
            shop(
                [
                    {"name": "publish", "params": {"topic": "t"}},
                    {"name": "emit_metric", "params": {"name": "m"}},
                ]
            ),
            {"a": 1},
            actions,
        )
    assert {r.name for r in caplog.records} >= {"pystator.events", "pystator.metrics"}
    assert isinstance(LoggingEventSink(), EventSink)


def test_registries_are_extended_not_overwritten() -> None:
    guards, actions = GuardRegistry(), ActionRegistry()
    actions.register("log", lambda ctx: "mine")
    register_builtins(guards, actions)
    assert actions.get("log") is not None and actions.get("log")({}) == "mine"  # type: ignore[misc]
    assert {"always", "never", "key_present", "key_absent"} <= set(guards.names())
    assert {
        "noop",
        "log",
        "trace",
        "set_context",
        "snapshot",
        "copy_key",
        "validate_keys",
        "publish",
        "emit_metric",
        "http",
    } <= set(actions.names())
    actions.register("refund", lambda ctx: None)
    assert "refund" in actions
    catalog = {(e.kind, e.name): e.description for e in get_builtin_catalog()}
    assert catalog[("guard", "key_present")] == "Every named key is in the context and not null."
    assert ("action", "http") in catalog and len(catalog) == 14


def test_builtins_report_bad_params_as_action_failures() -> None:
    from pystator import ActionExecutionError

    _, actions = builtin_registries()
    with pytest.raises(ActionExecutionError, match=r"copy_key needs params\.from"):
        run(shop([{"name": "copy_key", "params": {"to": "x"}}]), {}, actions)
    with pytest.raises(ActionExecutionError, match="emit_metric type must be one of"):
        run(shop([{"name": "emit_metric", "params": {"name": "m", "type": "meter"}}]), {}, actions)


def test_transition_context_accessors() -> None:
    ctx = TransitionContext({"_entity_id": 7, "_event": "evt", "amount": 3, "_x": 1})
    assert (ctx.entity_id, ctx.event, ctx.user_data()) == ("7", "evt", {"amount": 3})
    fleet = TransitionContext({"_pystator": {"entity_id": "e-1"}, "a": 1})
    assert fleet.entity_id == "e-1" and TransitionContext({}).entity_id is None


def test_the_orchestrator_hands_actions_the_entity_id() -> None:
    seen: list[str | None] = []
    actions = ActionRegistry()
    actions.register("note", lambda ctx: seen.append(TransitionContext(ctx).entity_id))
    Orchestrator(
        machine=shop(["note"]), state_store=InMemoryStateStore(), actions=actions
    ).process_event("cart-3", "pay")
    assert seen == ["cart-3"]
