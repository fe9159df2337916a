"""Lint: each finding as a library call, and ``pystator lint`` with its exit codes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from pystator import GuardRegistry, LintSeverity, LintWarning, StateMachine, lint, register_builtins
from pystator.cli import main
from tests.support.declarative_machines import PARALLEL_NAMES_YAML, TICKET_YAML, load

LIBRARY: dict[str, Any] = {
    "meta": {"machine_name": "library", "team": "lending"},
    "states": [
        {"name": "shelved", "type": "initial"},
        {"name": "lent"},
        {"name": "overdue"},
        {"name": "repair"},  # no way in
        {"name": "lost"},  # a way in, no way out
        {"name": "gate", "type": "choice"},
        {"name": "retired", "type": "terminal"},
    ],
    "transitions": [
        {"trigger": "lend", "source": "shelved", "dest": "lent", "guards": ["member_ok"]},
        {"trigger": "due", "source": "lent", "dest": "overdue"},
        {"trigger": "back", "source": ["lent", "overdue"], "dest": "gate", "actions": ["stamp"]},
        {
            "source": "gate",
            "dest": "shelved",
            "guards": [{"check": {"field": "ok", "op": "eq", "value": True}}],
        },
        {"trigger": "lose", "source": "overdue", "dest": "lost"},
        {"trigger": "retire", "source": "*", "dest": "retired"},
        {"trigger": "retire", "source": "lent", "dest": "shelved"},
        {
            "trigger": "fix",
            "source": "repair",
            "dest": "shelved",
            "actions": [{"branch": {"when": "True", "then": ["polish"]}}],
        },
    ],
}


def codes(findings: list[LintWarning]) -> list[tuple[str, str]]:
    return [(f.code, next(iter(f.context.values()), "")) for f in findings]


def test_every_finding_of_a_flawed_machine() -> None:
    findings = lint(LIBRARY)
    assert codes(findings) == [
        ("unreachable_state", "repair"),
        ("dead_transition", "transitions[6]"),
        ("nondeterministic", "lent"),
        ("choice_without_default", "gate"),
        ("unknown_meta_key", "team"),
    ]
    assert all(f.severity is LintSeverity.WARNING for f in findings[:-1])
    assert findings[-1].severity is LintSeverity.INFO
    assert findings[0].message == "State 'repair' is not reachable from the initial state"


def test_dead_ends_ignore_states_with_a_way_out_through_a_parent() -> None:
    doc = dict(
        LIBRARY, transitions=[t for t in LIBRARY["transitions"] if t.get("trigger") != "retire"]
    )
    dead = [f.context["state"] for f in lint(doc) if f.code == "dead_end"]
    assert dead == ["lost"]
    ticket = load(TICKET_YAML)
    assert codes(lint(ticket)) == [("unreachable_state", "broken")]  # an error state, unused
    ticket["error_policy"] = {"default_fallback": "broken"}
    assert lint(ticket) == []  # the fallback state is reachable from anywhere


def test_registry_checks_use_the_machine_s_registries() -> None:
    machine = StateMachine.from_dict(LIBRARY)
    missing = [
        (f.code, f.context.get("guard") or f.context.get("action"))
        for f in lint(machine)
        if f.code.startswith("missing")
    ]
    assert missing == [
        ("missing_guard", "member_ok"),
        ("missing_action", "stamp"),
        ("missing_action", "polish"),
    ]
    machine.guard("member_ok")(lambda ctx: True)
    machine.action("stamp")(lambda ctx: None)
    machine.action("polish")(lambda ctx: None)
    assert not [f for f in lint(machine) if f.code.startswith("missing")]
    guards, _ = register_builtins(GuardRegistry())
    assert [
        f.context["guard"] for f in lint(LIBRARY, guards=guards) if f.code == "missing_guard"
    ] == ["member_ok"]


def test_lint_reports_deprecated_forms_of_a_mapping() -> None:
    doc: Any = {
        "states": [
            {"name": "a", "type": "initial"},
            {"name": "b", "initial": "c", "children": [{"name": "c"}]},
        ],
        "transitions": [
            {"trigger": "go", "source": "a", "dest": "b"},
            {"trigger": "back", "source": "b", "dest": "a"},
        ],
    }
    (finding,) = lint(doc)
    assert (finding.code, finding.severity, finding.context["path"]) == (
        "deprecated_form",
        LintSeverity.INFO,
        "states[1].initial",
    )


def test_clean_machines_have_no_findings() -> None:
    assert lint(load(PARALLEL_NAMES_YAML)) == []


# --- the command line --------------------------------------------------------------------------


def write(tmp_path: Path, name: str, doc: Any) -> str:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(doc) if not isinstance(doc, str) else doc)
    return str(path)


def test_cli_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    clean = write(tmp_path, "desk.yaml", PARALLEL_NAMES_YAML)
    flawed = write(tmp_path, "library.yaml", LIBRARY)
    assert main(["lint", clean]) == 0
    assert capsys.readouterr().out == f"{clean}: no findings\n"

    assert main(["lint", clean, flawed]) == 1
    out = capsys.readouterr().out.splitlines()
    assert (
        out[1]
        == f"{flawed}: [WARNING] unreachable_state: State 'repair' is not reachable from the initial state"
    )
    assert (
        out[-1]
        == f"{flawed}: [INFO] unknown_meta_key: meta.team is not a key the engine reads (kept for tooling)"
    )

    only_info = load(PARALLEL_NAMES_YAML)
    only_info["meta"]["owner"] = "desk-team"  # kept for tooling: an INFO finding
    info = write(tmp_path, "info.yaml", only_info)
    assert main(["lint", info]) == 0
    assert main(["lint", info, "--fail-on", "info"]) == 1


def test_cli_registry_options_and_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    flawed = write(tmp_path, "library.yaml", LIBRARY)
    assert main(["lint", flawed, "--fail-on", "error", "--builtins"]) == 0
    out = capsys.readouterr().out
    assert "[WARNING] missing_guard: Guard 'member_ok' (transitions[0]) is not registered" in out
    assert main(["lint", flawed, "--guards", "tests.engine.test_lint:NOT_THERE"]) == 2
    assert "NOT_THERE" in capsys.readouterr().err

    broken = write(
        tmp_path,
        "broken.yaml",
        {
            "states": [{"name": "a", "type": "initial"}],
            "transitions": [{"trigger": "x", "source": "a", "dest": "b"}],
        },
    )
    assert main(["lint", broken]) == 2
    assert capsys.readouterr().out == f"{broken}: invalid: transitions[0].dest: unknown state 'b'\n"
    assert main(["lint", str(tmp_path / "missing.yaml")]) == 2
    assert "cannot read" in capsys.readouterr().out


def test_validate_lists_deprecations(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(
        tmp_path,
        "old.yaml",
        {
            "states": [
                {"name": "a", "type": "initial"},
                {"name": "b", "timeout": {"seconds": 3, "dest": "a"}},
            ],
            "transitions": [{"trigger": "go", "source": "a", "dest": "b"}],
        },
    )
    assert main(["validate", path]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "old: 2 states, 1 transition, 2 triggers, 1 timer",
        f"warning: {path}: states[1].timeout.dest: 'timeout.dest' is deprecated: write 'timeout.destination'",
    ]
