"""``pystator viz FILE --format mermaid|flowchart|dot|scxml``."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from pystator.cli import main
from tests.conftest import EXAMPLES
from tests.support.diagram_machines import RIG_YAML, parse_dot

ORDER_FSM = EXAMPLES / "order_fsm.yaml"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def rig(tmp_path: Path) -> Path:
    path = tmp_path / "rig.yaml"
    path.write_text(RIG_YAML)
    return path


def test_mermaid_is_the_default(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "viz", str(ORDER_FSM))
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[:2] == ["stateDiagram-v2", "    direction LR"]
    assert "    PENDING --> OPEN : exchange_ack" in lines and "    FILLED --> [*]" in lines


def test_each_format(capsys: pytest.CaptureFixture[str], rig: Path) -> None:
    code, out, _ = run(capsys, "viz", str(rig), "--format", "dot", "--title", "Rig: v1")
    graph = parse_dot(out)
    assert code == 0 and graph.name == "rig" and graph.graph["label"] == "Rig: v1"
    assert set(graph.clusters) == {"cluster:on", "cluster:pump", "cluster:pumping", "cluster:light"}

    code, out, _ = run(capsys, "viz", str(rig), "-f", "flowchart", "--direction", "RL")
    assert code == 0 and "flowchart RL" in out.splitlines()
    assert '    subgraph pumping ["pumping"]' in out.replace("        ", "    ")

    code, out, _ = run(capsys, "viz", str(rig), "--format", "scxml")
    root = ET.fromstring(out)
    assert code == 0 and root.get("initial") == "off"
    assert root.find("{http://www.w3.org/2005/07/scxml}parallel") is not None


def test_options_reach_the_exporter(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    doc = tmp_path / "m.json"
    doc.write_text(
        json.dumps(
            {
                "meta": {"machine_name": "m"},
                "states": [{"name": "a", "type": "initial"}, {"name": "b", "type": "terminal"}],
                "transitions": [
                    {
                        "trigger": "go",
                        "source": "a",
                        "dest": "b",
                        "guards": ["ok"],
                        "actions": ["x"],
                    },
                    {"after": "5s", "source": "a", "dest": "b"},
                ],
            }
        )
    )
    _, out, _ = run(capsys, "viz", str(doc), "--format", "dot", "--actions")
    graph = parse_dot(out)
    assert graph.edge("a", "b", "go\n[ok]\n/ x") is not None
    _, out, _ = run(capsys, "viz", str(doc), "--format", "dot", "--no-guards", "--no-timeouts")
    assert [attrs["label"] for _, _, attrs in parse_dot(out).edges if "label" in attrs] == ["go"]


def test_output_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    target = tmp_path / "order.dot"
    code, out, err = run(capsys, "viz", str(ORDER_FSM), "-f", "dot", "--output", str(target))
    assert (code, out) == (0, "")
    assert f"to {target}" in err
    assert parse_dot(target.read_text()).edge("PENDING", "OPEN")["label"] == "exchange_ack"


def test_bad_input_is_a_clear_error(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, err = run(capsys, "viz", str(tmp_path / "missing.yaml"))
    assert (code, out) == (2, "")
    assert (
        err == f"pystator viz: cannot read {tmp_path / 'missing.yaml'}: No such file or directory\n"
    )

    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00")
    code, _, err = run(capsys, "viz", str(binary))
    assert code == 1 and "not UTF-8 text: byte 0xff at line 1, column 1" in err

    broken = tmp_path / "broken.yaml"
    broken.write_text(
        "meta: {machine_name: b}\nstates: [{name: a, type: initial}]\n"
        "transitions: [{trigger: t, source: a, dest: nowhere}, {trigger: u, source: x, dest: a}]\n"
    )
    code, out, err = run(capsys, "viz", str(broken))
    assert (code, out) == (1, "")
    assert f"{broken}: transitions[0].dest: unknown state 'nowhere'" in err
    assert "transitions[1].source" in err  # every problem, not the first

    not_yaml = tmp_path / "list.yaml"
    not_yaml.write_text("- just\n- a list\n")
    code, _, err = run(capsys, "viz", str(not_yaml))
    assert code == 1 and "must be a mapping" in err

    code, _, err = run(capsys, "viz", str(ORDER_FSM), "-o", str(tmp_path / "no" / "dir.md"))
    assert code == 2 and "cannot write" in err


def test_unknown_format_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["viz", str(ORDER_FSM), "--format", "png"])
    assert stop.value.code == 2
    assert "invalid choice: 'png'" in capsys.readouterr().err


def test_console_script_prints_no_traceback(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pystator.cli", "viz", str(tmp_path / "nope.yaml")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2 and done.stdout == ""
    assert "Traceback" not in done.stderr and "cannot read" in done.stderr
