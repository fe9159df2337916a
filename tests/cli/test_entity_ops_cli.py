"""``pystator entities export|import|purge|archive``: thin callers of the entity services, on
PostgreSQL and SQLite (the round trip, a 404 after archiving, a bad document refused)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from pystator import StateMachine
from pystator.cli import main
from pystator.services import entities
from pystator.stores.sql.connections import dispose, fleet_engine

pytestmark = pytest.mark.integration

MACHINE = "cliops"
CONFIG: dict[str, Any] = {
    "meta": {"version": "1.0.0", "machine_name": MACHINE},
    "states": [
        {"name": "new", "type": "initial"},
        {"name": "open", "type": "stable"},
        {"name": "gone", "type": "terminal"},
    ],
    "transitions": [
        {"trigger": "open", "source": "new", "dest": "open"},
        {"trigger": "close", "source": "open", "dest": "gone", "after": "1h"},
    ],
}


@pytest.fixture(params=["postgresql", "sqlite"])
def engine(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[sa.Engine]:
    name = "pg_migrated_url" if request.param == "postgresql" else "sqlite_migrated_url"
    url = str(request.getfixturevalue(name))
    machines = tmp_path / "machines.json"
    machines.write_text(json.dumps(CONFIG), encoding="utf-8")
    monkeypatch.setenv("PYSTATOR_DATABASE_URL", url)
    monkeypatch.setenv("PYSTATOR_BROKER_URL", "memory://")
    monkeypatch.setenv("PYSTATOR_MACHINES", str(machines))
    engine = fleet_engine(url)
    yield engine
    dispose(engine)


def cli(capsys: pytest.CaptureFixture[str], *args: str, status: int = 0) -> tuple[str, str]:
    capsys.readouterr()
    assert main(list(args)) == status
    captured = capsys.readouterr()
    return captured.out, captured.err


def test_export_purge_import_and_archive(
    engine: sa.Engine, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    machine = StateMachine.from_dict(CONFIG)
    entities.create(engine, machine, "a", {"n": 1})
    assert entities.send_event(engine, machine, "a", "open").success

    document = json.loads(cli(capsys, "entities", "export", MACHINE, "a")[0])
    assert (document["state"], document["version"], len(document["history"])) == ("open", 2, 2)
    saved = tmp_path / "a.json"
    cli(capsys, "entities", "export", MACHINE, "a", "-o", str(saved))
    assert json.loads(saved.read_text(encoding="utf-8")) == document

    purged = json.loads(cli(capsys, "entities", "purge", MACHINE, "a")[0])
    assert purged["deleted"] == {"entity": 1, "history": 2, "timers": 1}
    assert "no entity 'a'" in cli(capsys, "entities", "purge", MACHINE, "a", status=2)[1]

    out, _ = cli(capsys, "entities", "import", str(saved))
    assert "imported cliops/a: open (version 2)" in out
    assert entities.export(engine, MACHINE, "a")["history"] == document["history"]
    cli(capsys, "entities", "import", str(saved), "--entity", "b")
    assert entities.load(engine, MACHINE, "b").version == 2
    assert "already exists" in cli(capsys, "entities", "import", str(saved), status=2)[1]

    archived, deleted = cli(capsys, "entities", "archive", MACHINE, "b")
    assert json.loads(archived)["entity_id"] == "b"
    assert json.loads(deleted)["deleted"]["entity"] == 1
    assert "no entity 'b'" in cli(capsys, "entities", "archive", MACHINE, "b", status=2)[1]


def test_a_bad_document_is_a_clear_error(
    engine: sa.Engine, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]", encoding="utf-8")
    assert "JSON object" in cli(capsys, "entities", "import", str(bad), status=2)[1]
    bad.write_text(
        json.dumps({"machine_name": MACHINE, "entity_id": "x", "state": "open", "history": [{}]}),
        encoding="utf-8",
    )
    assert "history[0]" in cli(capsys, "entities", "import", str(bad), status=2)[1]
    bad.write_text(json.dumps({"machine_name": "nope", "entity_id": "x", "state": "open"}))
    assert "no machine 'nope'" in cli(capsys, "entities", "import", str(bad), status=2)[1]
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM entity_states")).scalar_one() == 0
