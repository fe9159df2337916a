"""Operator commands: ``pystator events list/show/stats/replay/discard`` and ``entities show``."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from pystator.cli import main
from pystator.fleet.producer import EventSpec
from pystator.stores.sql.connections import dispose
from tests.support.worker import MACHINE, Rig, make_rig

pytestmark = pytest.mark.integration


@pytest.fixture
def rig(sqlite_migrated_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Rig]:
    monkeypatch.setenv("PYSTATOR_DATABASE_URL", sqlite_migrated_url)
    monkeypatch.setenv("PYSTATOR_BROKER_URL", "memory://")
    rig = make_rig(sqlite_migrated_url)
    yield rig
    dispose(rig.engine)


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    capsys.readouterr()
    assert main(list(args)) == 0
    return capsys.readouterr().out


@pytest.fixture
def seeded(rig: Rig) -> dict[str, int]:
    ids = {"open": rig.submit("a", "open")}
    ids["dead"] = rig.producer.submit(
        EventSpec(
            machine=MACHINE, entity_id="a", trigger="bump", context={"poison": 1}, max_attempts=1
        )
    ).event_id
    ids["rejected"] = rig.submit("a", "bump", reject=True)
    ids["dup"] = rig.producer.submit(
        EventSpec(machine=MACHINE, entity_id="b", trigger="open", idempotency_key="k")
    ).event_id
    rig.producer.submit(
        EventSpec(machine=MACHINE, entity_id="b", trigger="open", idempotency_key="k")
    )
    rig.processor.drain()
    return ids


def test_list_show_and_stats(
    rig: Rig, seeded: dict[str, int], capsys: pytest.CaptureFixture[str]
) -> None:
    listed = cli(capsys, "events", "list", "--status", "dead")
    assert f"{seeded['dead']}" in listed and "dead" in listed and "poison" in listed
    as_json = [json.loads(line) for line in cli(capsys, "events", "list", "--json").splitlines()]
    assert {e["id"] for e in as_json} == set(seeded.values())

    shown = json.loads(cli(capsys, "events", "show", str(seeded["dead"])))
    assert shown["status"] == "dead"
    assert shown["errors"][0]["attempt"] == 1 and "poison" in shown["errors"][0]["message"]

    stats = json.loads(cli(capsys, "events", "stats", "--json"))
    assert stats["events"]["dead"] == 1 and stats["events"]["rejected"] == 1
    assert stats["duplicates"] == 1
    assert "duplicates 1" in cli(capsys, "events", "stats")


def test_replay_a_dead_event_after_fixing_it(
    rig: Rig, seeded: dict[str, int], capsys: pytest.CaptureFixture[str]
) -> None:
    assert "replayed 1 events of 1 entities" in cli(capsys, "events", "replay", str(seeded["dead"]))
    replayed = rig.event(seeded["dead"])
    assert (replayed.status, replayed.attempts, len(replayed.errors)) == ("pending", 0, 1)


def test_replay_and_discard_by_filter(
    rig: Rig, seeded: dict[str, int], capsys: pytest.CaptureFixture[str]
) -> None:
    # a change by filter shows its count and does nothing without --yes (no terminal here)
    assert main(["events", "replay", "--status", "rejected", "--machine", MACHINE]) == 3
    assert rig.event(seeded["rejected"]).status == "rejected"
    dry = cli(capsys, "events", "replay", "--status", "rejected", "--dry-run", "--entity", "a")
    assert "events to replay: 1" in dry
    assert rig.event(seeded["rejected"]).status == "rejected"
    cli(capsys, "events", "replay", "--status", "rejected", "--machine", MACHINE, "--yes")
    assert rig.event(seeded["rejected"]).status == "pending"
    assert "discarded 2 events" in cli(capsys, "events", "discard", "--entity", "a", "--yes")
    assert rig.event(seeded["rejected"]).status == "discarded"
    assert rig.event(seeded["dead"]).status == "discarded"
    assert rig.event(seeded["open"]).status == "completed"  # finished work is never discarded


def test_replay_without_a_selection_is_refused(
    rig: Rig, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["events", "replay"]) == 2
    assert "give event ids or at least one filter" in capsys.readouterr().err


def test_entities_show(
    rig: Rig, seeded: dict[str, int], capsys: pytest.CaptureFixture[str]
) -> None:
    shown = json.loads(cli(capsys, "entities", "show", MACHINE, "a"))
    assert (shown["state"], shown["version"]) == ("open", 1)
    assert shown["history"][0]["event_id"] == seeded["open"]
    assert main(["entities", "show", MACHINE, "nobody"]) == 2
