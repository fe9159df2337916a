"""``pystator validate`` and ``pystator process``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from pystator.cli import main
from tests.conftest import EXAMPLES

ORDER_FSM = EXAMPLES / "order_fsm.yaml"

BROKEN_YAML = """\
meta:
  version: "1.0.0"
  machine_name: "broken"
states:
  - name: PENDING
    type: initial
  - name: OPEN
    type: stable
transitions:
  - trigger: exchange_ack
    source: PENDING
    dest: FILED
  - trigger: fill
    source: NOWHERE
    dest: OPEN
"""

TIMED_YAML = """\
meta:
  version: "1.0.0"
  machine_name: "timed"
states:
  - name: idle
    type: initial
  - name: waiting
  - name: done
    type: terminal
transitions:
  - trigger: start
    source: idle
    dest: waiting
  - trigger: expire
    source: waiting
    dest: done
    after: "2s"
"""


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_validate_prints_a_summary_per_machine(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    timed = tmp_path / "timed.yaml"
    timed.write_text(TIMED_YAML)
    as_json = tmp_path / "order.json"
    as_json.write_text(json.dumps(yaml.safe_load(ORDER_FSM.read_text())))
    code, out, _ = run(capsys, "validate", str(ORDER_FSM), str(timed), str(as_json))
    assert code == 0
    assert out.splitlines() == [
        "order_management: 3 states, 2 transitions, 2 triggers, 0 timers",
        "timed: 3 states, 2 transitions, 2 triggers, 1 timer",
        "order_management: 3 states, 2 transitions, 2 triggers, 0 timers",
    ]


def test_validate_prints_every_problem(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text(BROKEN_YAML)
    code, out, _ = run(capsys, "validate", str(ORDER_FSM), str(broken))
    assert code == 1
    lines = out.splitlines()
    assert lines[0].startswith("order_management: ")
    problems = lines[1:]
    assert len(problems) >= 2
    assert all(line.startswith(f"{broken}: ") for line in problems)
    assert any("FILED" in line and "transitions[0]" in line for line in problems)
    assert any("NOWHERE" in line and "transitions[1]" in line for line in problems)
    assert "Traceback" not in out


def test_validate_reports_unreadable_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    garbage = tmp_path / "garbage.yaml"
    garbage.write_text("states: [unclosed\n")
    code, out, _ = run(capsys, "validate", str(tmp_path / "missing.yaml"), str(garbage))
    assert code == 1
    lines = out.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(f"{tmp_path / 'missing.yaml'}: ")
    assert lines[1].startswith(f"{garbage}: ")


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
@pytest.mark.parametrize("command", ["validate", "lint", "process"])
def test_a_file_that_is_not_utf8_gets_a_located_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str, suffix: str
) -> None:
    latin1 = tmp_path / f"latin1{suffix}"
    latin1.write_bytes("meta:\n  machine_name: caf\u00e9\n".encode("latin-1"))
    argv = [command, str(latin1)] + (["idle", "go"] if command == "process" else [])
    code, out, err = run(capsys, *argv)
    assert code in (1, 2)
    assert "not UTF-8 text: byte 0xe9 at line 2, column 20" in out + err
    assert "Traceback" not in out + err


def test_process_prints_the_result_as_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys, "process", str(ORDER_FSM), "PENDING", "exchange_ack", "--context", '{"qty": 1}'
    )
    assert code == 0
    result = json.loads(out)
    assert result["success"] is True
    assert result["source_state"] == "PENDING" and result["target_state"] == "OPEN"
    assert result["trigger"] == "exchange_ack" and result["error"] is None
    assert result["states_exited"] == ["PENDING"] and result["states_entered"] == ["OPEN"]


def test_process_context_defaults_to_empty(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "process", str(ORDER_FSM), "OPEN", "fill")
    assert code == 0 and json.loads(out)["target_state"] == "FILLED"


def test_process_rejection_exits_1_with_reason(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "process", str(ORDER_FSM), "FILLED", "fill")
    assert code == 1
    result = json.loads(out)
    assert result["success"] is False and result["target_state"] is None
    assert result["metadata"]["reason"] == "terminal_state"
    assert result["error"]["code"] == "TERMINAL_STATE"


def test_process_timers_in_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    timed = tmp_path / "timed.yaml"
    timed.write_text(TIMED_YAML)
    code, out, _ = run(capsys, "process", str(timed), "idle", "start")
    assert code == 0
    (timer,) = json.loads(out)["timers_to_arm"]
    assert timer["state"] == "waiting" and timer["delay_ms"] == 2000
    assert timer["trigger"] == "expire"


@pytest.mark.parametrize(
    ("context", "message"),
    [("{not json", "not valid JSON"), ("[1, 2]", "must be a JSON object")],
)
def test_process_bad_context_exits_2(
    capsys: pytest.CaptureFixture[str], context: str, message: str
) -> None:
    code, out, err = run(
        capsys, "process", str(ORDER_FSM), "PENDING", "exchange_ack", "--context", context
    )
    assert code == 2 and out == ""
    assert message in err and "Traceback" not in err


def test_process_undefined_state_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "process", str(ORDER_FSM), "NOWHERE", "fill")
    assert code == 2 and out == ""
    assert "NOWHERE" in err


def test_process_missing_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "process", str(tmp_path / "nope.yaml"), "A", "go")
    assert code == 2 and "nope.yaml" in err


def test_process_prints_the_context_after_effects(capsys: pytest.CaptureFixture[str]) -> None:
    path = str(EXAMPLES / "declarative_order.yaml")
    assert main(["process", path, "draft", "submit", "--context", '{"qty": 2, "price": 5}']) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["context"]["total"] == 10 and printed["context"]["trail"] == ["review"]
