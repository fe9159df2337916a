"""``process``/``aprocess``: guards, rejections, context checks, hooks and sessions."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import pytest

from pystator import (
    ContextValidationError,
    EntitySession,
    GuardEvaluationError,
    GuardRegistry,
    MetricsCollector,
    StateMachine,
    TransitionObserver,
    UndefinedStateError,
)
from pystator.fsm_core.errors import ConfigurationError, GuardNotFoundError, InvalidStateError

ORDER: dict[str, Any] = {
    "meta": {"machine_name": "order", "validate_context": {"OPEN": ["order_qty"]}},
    "states": [
        {"name": "PENDING", "type": "initial"},
        {"name": "OPEN"},
        {"name": "PARTIAL"},
        {"name": "FILLED", "type": "terminal"},
    ],
    "transitions": [
        {"trigger": "ack", "source": "PENDING", "dest": "OPEN"},
        {
            "trigger": "fill",
            "source": ["OPEN", "PARTIAL"],
            "dest": "FILLED",
            "guards": ["positive", "expr: fill_qty >= order_qty"],
        },
        {
            "trigger": "fill",
            "source": ["OPEN", "PARTIAL"],
            "dest": "PARTIAL",
            "guards": ["positive"],
        },
    ],
}


def machine() -> StateMachine:
    m = StateMachine.from_dict(ORDER)
    m.guard("positive")(lambda ctx: ctx.get("fill_qty", 0) > 0)
    return m


def test_first_passing_candidate_wins() -> None:
    m = machine()
    assert m.process("OPEN", "fill", {"fill_qty": 10, "order_qty": 10}).target_state == "FILLED"
    assert m.process("OPEN", "fill", {"fill_qty": 5, "order_qty": 10}).target_state == "PARTIAL"
    rejected = m.process("OPEN", "fill", {"fill_qty": 0, "order_qty": 10})
    assert not rejected.success and rejected.metadata["reason"] == "guard_rejected"
    assert rejected.metadata["guard_name"] == "positive"


def test_business_rejections_are_results_not_exceptions() -> None:
    m = machine()
    terminal = m.process("FILLED", "fill", {})
    assert terminal.metadata["reason"] == "terminal_state"
    undefined = m.process("PENDING", "fill", {})
    assert undefined.metadata["reason"] == "undefined_trigger"
    assert "not allowed in state 'PENDING'" in str(undefined.error)
    unknown = m.process("PENDING", "teleport", {})
    assert "has no trigger 'teleport'" in str(unknown.error)


def test_validate_context_runs_before_guards() -> None:
    result = machine().process("OPEN", "fill", {"fill_qty": 1})
    assert result.metadata["reason"] == "context_validation"
    assert isinstance(result.error, ContextValidationError)
    assert result.metadata["missing"] == ["order_qty"]


def test_bad_input_raises_fsm_errors() -> None:
    m = machine()
    with pytest.raises(UndefinedStateError):
        m.process("NOWHERE", "ack", {})
    with pytest.raises(UndefinedStateError):
        m.process(["unhashable"], "ack", {})  # type: ignore[arg-type]
    with pytest.raises(ContextValidationError):
        m.process("PENDING", "ack", ["not", "a", "dict"])  # type: ignore[arg-type]
    assert not m.process("PENDING", {"x": 1}, {}).success  # type: ignore[arg-type]


def test_guard_failures_keep_their_cause() -> None:
    m = StateMachine.from_dict(ORDER)
    with pytest.raises(GuardNotFoundError):
        m.process("OPEN", "fill", {"order_qty": 1})

    def boom(ctx: Mapping[str, Any]) -> bool:
        raise KeyError("fill_qty")

    m.guard("positive")(boom)
    with pytest.raises(GuardEvaluationError) as caught:
        m.process("OPEN", "fill", {"order_qty": 1})
    assert isinstance(caught.value.__cause__, KeyError)


def test_async_guards_need_aprocess() -> None:
    m = StateMachine.from_dict(ORDER)

    async def positive(ctx: Mapping[str, Any]) -> bool:
        await asyncio.sleep(0)
        return bool(ctx.get("fill_qty"))

    registry = GuardRegistry()
    registry.register("positive", positive)
    m.bind_guards(registry)
    with pytest.raises(GuardEvaluationError, match="aprocess"):
        m.process("OPEN", "fill", {"fill_qty": 1, "order_qty": 1})
    result = asyncio.run(m.aprocess("OPEN", "fill", {"fill_qty": 1, "order_qty": 1}))
    assert result.target_state == "FILLED"


def test_guards_registered_after_binding_are_found() -> None:
    m = StateMachine.from_dict(ORDER)
    registry = GuardRegistry()
    m.bind_guards(registry)
    registry.register("positive", lambda ctx: True)
    assert m.process("OPEN", "fill", {"fill_qty": 1, "order_qty": 5}).target_state == "PARTIAL"


def test_attached_observer_sees_every_process() -> None:
    m = machine()
    metrics = MetricsCollector()
    m.attach_observer(TransitionObserver((metrics,)))
    m.process("PENDING", "ack", {})
    m.process("FILLED", "fill", {})
    with pytest.raises(UndefinedStateError):
        m.process("NOPE", "ack", {})
    summary = metrics.get_summary()
    assert summary["total_transitions"] == 3  # errors count as attempts too
    assert summary["success_rate"] == pytest.approx(1 / 3)
    m.detach_observer()
    m.process("PENDING", "ack", {})
    assert metrics.get_summary()["total_transitions"] == 3


def test_session_generated_names_and_snapshot() -> None:
    m = machine()
    order = m.create(context={"order_qty": 10})
    assert order.is_pending and not order.is_open
    assert order.allowed_triggers == ["ack"]
    order.ack()
    assert order.current_state == "OPEN"
    rejected = order.fill(fill_qty=0)
    assert not rejected.success and "fill_qty" not in order.context  # rejected: context kept
    order.fill(fill_qty=4)
    assert order.current_state == "PARTIAL" and order.context["fill_qty"] == 4
    asyncio.run(order.asend("fill", fill_qty=10))
    assert order.is_final and order.is_filled
    restored = EntitySession.from_snapshot(m, order.snapshot())
    assert restored.current_state == "FILLED" and restored.context == order.context
    with pytest.raises(AttributeError, match="is_<state>"):
        _ = order.teleport
    with pytest.raises(ConfigurationError):
        EntitySession.from_snapshot(m, {"machine": "other", "state": "OPEN"})
    with pytest.raises(InvalidStateError):
        m.create(initial_state="NOWHERE")


def test_loading_from_yaml_text_and_file_forms(tmp_path: Any) -> None:
    import json

    import yaml

    text = yaml.safe_dump(ORDER)
    assert StateMachine.from_yaml(text).name == "order"
    path = tmp_path / "order.json"
    path.write_text(json.dumps(ORDER))
    assert StateMachine.from_file(path).name == "order"
