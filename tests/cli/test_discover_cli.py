"""``pystator discover ingest|build|show|diff`` in process, on SQLite: files with bad lines,
records classified by when rules, a build from the fleet's own history (edges == the edges the
worker used), the candidate's definition validating, register never current, and the diff."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from pystator.cli import main
from pystator.registry.stored import StoredMachines
from pystator.stores.sql.connections import dispose
from tests.discovery.test_when_rules import SENSOR
from tests.support.worker import CONFIG, MACHINE, Rig, make_rig

pytestmark = pytest.mark.integration


@pytest.fixture
def rig(sqlite_migrated_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Rig]:
    machines = tmp_path / "machines"
    machines.mkdir()
    (machines / "wtest.yaml").write_text(yaml.safe_dump(CONFIG))
    (machines / "sensor.yaml").write_text(yaml.safe_dump(SENSOR))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PYSTATOR_DATABASE_URL", sqlite_migrated_url)
    monkeypatch.setenv("PYSTATOR_BROKER_URL", "memory://")
    monkeypatch.setenv("PYSTATOR_MACHINES", str(machines))
    rig = make_rig(sqlite_migrated_url)
    yield rig
    dispose(rig.engine)


def run(capsys: pytest.CaptureFixture[str], *args: str, code: int = 0) -> str:
    """The command's output (stdout, then stderr)."""
    capsys.readouterr()
    assert main(list(args)) == code
    captured = capsys.readouterr()
    return captured.out + captured.err


def lines(path: Path, items: list[Any]) -> Path:
    path.write_text("".join((i if isinstance(i, str) else json.dumps(i)) + "\n" for i in items))
    return path


def seen(entity: str, state: str, minute: int) -> dict[str, Any]:
    return {
        "entity_id": entity,
        "machine_name": "orders",
        "state": state,
        "observed_at": f"2026-03-01T10:{minute:02d}:00Z",
    }


def test_ingest_a_jsonl_and_a_csv_file_then_build_and_show(
    rig: Rig, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    jsonl = lines(
        tmp_path / "orders.jsonl",
        [
            seen("o1", "pending", 0),
            seen("o1", "open", 1),
            "{not json",
            {"entity_id": "o2", "state": "open"},  # no machine_name and no --machine
            seen("o1", "filled", 2),
        ],
    )
    out = run(capsys, "discover", "ingest", str(jsonl), code=1)
    assert "5 lines, 3 recorded, 0 duplicates, 0 without a state, 2 refused" in out
    assert "line 3: not JSON" in out and "line 4: machine_name is missing" in out
    csv = tmp_path / "more.csv"
    csv.write_text(
        "entity_id,state,observed_at\n"
        "o2,pending,2026-03-01T11:00:00Z\n"
        "o2,open,2026-03-01T11:01:00Z\n"
        "o2,filled,2026-03-01T11:02:00Z\n"
    )
    out = run(capsys, "discover", "ingest", str(csv), "--machine", "orders")
    assert "3 lines, 3 recorded" in out

    out = run(capsys, "discover", "build", "orders")
    assert "orders candidate v1: 6 observations of 2 entities" in out
    assert "+ pending -> open  [to_open]  count 2  confidence 1.000" in out
    assert "+ open -> filled" in out
    definition = run(capsys, "discover", "show", "orders", "--definition")
    path = tmp_path / "candidate.yaml"
    path.write_text(definition)
    assert main(["validate", str(path)]) == 0
    shown = json.loads(run(capsys, "discover", "show", "orders", "--json"))
    assert shown["version"] == 1 and len(shown["edges"]) == 2
    assert main(["discover", "show", "orders", "--version", "9"]) == 2  # clear error
    assert "no candidate version 9" in capsys.readouterr().err


def test_ingest_records_classified_by_when_rules(
    rig: Rig, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    records = lines(
        tmp_path / "sensor.jsonl",
        [
            {"id": 1, "sensor_id": "s1", "temperature": 50, "recorded_at": "2026-03-01T10:00:00"},
            {"id": 2, "sensor_id": "s1", "temperature": 150, "pressure": 5},
            {"id": 2, "sensor_id": "s1", "temperature": 150, "pressure": 5},  # re-sent
            {"id": 3, "temperature": 50},  # no sensor_id
        ],
    )
    out = run(
        capsys,
        "discover",
        "ingest",
        str(records),
        "--records",
        "--machine",
        "sensor_fsm",
        "--event-id-field",
        "id",
        code=1,
    )
    assert "4 lines, 2 recorded, 1 duplicates, 0 without a state, 1 refused" in out
    assert "line 4: the record has no entity id in field 'sensor_id'" in out
    assert main(["discover", "ingest", str(records), "--records"]) == 2


def drain(rig: Rig, script: dict[str, list[str]]) -> None:
    for step in range(max(len(t) for t in script.values())):
        for entity, triggers in script.items():
            if step < len(triggers):
                rig.submit(entity, triggers[step])
        rig.processor.drain()


def test_build_from_the_fleets_history_register_and_diff(
    rig: Rig, capsys: pytest.CaptureFixture[str]
) -> None:
    # nobody bumps: the active machine's open -> open edge is unused
    drain(rig, {"e1": ["open", "close"], "e2": ["open", "close"], "e3": ["open"]})
    out = run(capsys, "discover", "build", MACHINE, "--source", "history", "--min-edge-count", "1")
    assert f"{MACHINE} candidate v1" in out and "(transition_history)" in out
    assert "+ new -> open  [open]  count 3" in out
    assert "+ open -> closed  [close]  count 2" in out
    candidate = json.loads(run(capsys, "discover", "show", MACHINE, "--json"))
    used = {(e["source_state"], e["destination_state"]) for e in candidate["edges"]}
    assert used == {("new", "open"), ("open", "closed")}  # exactly the edges the worker used

    out = run(capsys, "discover", "diff", MACHINE, code=1)
    assert "2 edges both have" in out
    assert "unused      open -> open  (allowed, never observed)" in out
    diff = json.loads(run(capsys, "discover", "diff", MACHINE, "--json", code=1))
    assert diff["unexpected"] == [] and diff["unused"] == [
        {"source_state": "open", "destination_state": "open"}
    ]

    out = run(
        capsys,
        "discover",
        "build",
        MACHINE,
        "--source",
        "history",
        "--min-edge-count",
        "1",
        "--register",
    )
    assert "registry: version 1 of wtest (stored); the current version stays 0" in out
    # the file definition is still the one workers apply (the registry has no current version
    # of it), and the diff is against it, unchanged
    assert not StoredMachines(rig.engine).lookup(MACHINE).known
    assert main(["discover", "diff", MACHINE]) == 1
