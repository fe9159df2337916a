"""The seed README's "Orchestrator and delayed transitions" example runs unchanged."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

# Verbatim from the seed README (section "Orchestrator and delayed transitions").
SEED_EXAMPLE = """
import asyncio
from pystator import StateMachine, Orchestrator, GuardRegistry, ActionRegistry
from pystator import InMemoryStateStore
from pystator.scheduler import AsyncioScheduler

machine = StateMachine.from_yaml("my_fsm.yaml")  # has a transition with after: "2s"
store = InMemoryStateStore()
guards = GuardRegistry()
actions = ActionRegistry()
scheduler = AsyncioScheduler()

orchestrator = Orchestrator(
    machine=machine, state_store=store, guards=guards, actions=actions, scheduler=scheduler
)

async def main():
    await orchestrator.async_process_event("entity-1", "start", {})
    await asyncio.sleep(2.5)  # delayed transition fires
    await orchestrator.close()

asyncio.run(main())
"""

MY_FSM = """
meta:
  version: "1.0.0"
  machine_name: "my_fsm"
states:
  - name: IDLE
    type: initial
  - name: WAITING
    type: stable
  - name: DONE
    type: terminal
transitions:
  - trigger: start
    source: IDLE
    dest: WAITING
  - trigger: finish
    source: WAITING
    dest: DONE
    after: "2s"
"""


def test_seed_orchestrator_example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("pystator.scheduler")
    (tmp_path / "my_fsm.yaml").write_text(MY_FSM)
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, Any] = {"__name__": "seed_example"}
    exec(compile(SEED_EXAMPLE, "seed_readme_example.py", "exec"), namespace)
    record = namespace["store"].load("my_fsm", "entity-1")
    assert record is not None
    assert (record.state, record.version) == ("DONE", 2)
    assert [h.origin for h in namespace["store"].history("my_fsm", "entity-1")] == [
        "direct",
        "timer",
    ]
