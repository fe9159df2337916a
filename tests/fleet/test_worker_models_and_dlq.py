"""``WorkerEvent`` / ``ClaimedEvent`` / ``EventStatus`` from ``pystator.worker``, and the DLQ
settings: dead letters are rows of ``worker_events``, so a DLQ setting asking for anything else
fails at start-up saying so (never silently ignored)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pystator import PyStatorRuntime
from pystator.config.settings import load_settings
from pystator.errors import SettingsError
from pystator.services import admin
from pystator.worker import ClaimedEvent, EventStatus, WorkerConfig, WorkerEvent
from tests.support.worker_processes import ROOT, run

WHERE = "dead letters are rows of the worker_events table"


def test_a_worker_event_is_submitted_and_claimed_by_its_documented_names() -> None:
    with PyStatorRuntime.in_memory() as rt:
        rt.register_machine_from_file(ROOT / "examples" / "order_fsm.yaml")
        rt.create_entity("order_management", "o-1")
        event = WorkerEvent(
            machine_name="order_management", entity_id="o-1", trigger="exchange_ack"
        )
        [receipt] = rt.fleet.producer.submit_many([event])
        done = rt.queue.wait_for_event(receipt) if rt.queue else None
        assert done is not None and done.status is EventStatus.COMPLETED
        claimed = ClaimedEvent.from_row(admin.show_event(rt.engine, int(receipt)).event)
        assert (claimed.event_id, claimed.machine_name, claimed.trigger) == (
            int(receipt),
            "order_management",
            "exchange_ack",
        )
        assert claimed.status is EventStatus.COMPLETED


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("PYSTATOR_WORKER_DLQ_ENABLED", "false"),
        ("PYSTATOR_WORKER_DLQ_TABLE_NAME", "dead_letter_queue"),
        ("PYSTATOR_WORKER_DLQ_DATABASE_URL", "sqlite:///elsewhere.db"),
    ],
)
def test_a_dlq_setting_that_cannot_work_is_refused(variable: str, value: str) -> None:
    env = {"PYSTATOR_DATABASE_URL": "sqlite:///main.db", variable: value}
    with pytest.raises(SettingsError, match=variable) as refused:
        load_settings(env, config_file="/nonexistent.cfg")
    assert WHERE in str(refused.value)


def test_dlq_settings_that_name_where_dead_letters_live_are_accepted() -> None:
    env = {
        "PYSTATOR_DATABASE_URL": "sqlite:///main.db",
        "PYSTATOR_WORKER_DLQ_ENABLED": "true",
        "PYSTATOR_WORKER_DLQ_DATABASE_URL": "sqlite:///main.db",
        "PYSTATOR_WORKER_DLQ_TABLE_NAME": "worker_events",
    }
    settings = load_settings(env, config_file="/nonexistent.cfg")
    config = WorkerConfig.from_settings(settings)
    assert config.resolve_dlq_database_url() == "sqlite:///main.db"
    assert WorkerConfig(db_url="sqlite:///a.db").resolve_dlq_database_url() == "sqlite:///a.db"


def test_worker_config_refuses_a_dlq_elsewhere_when_built() -> None:
    with pytest.raises(SettingsError, match=WHERE):
        WorkerConfig(db_url="sqlite:///a.db", dlq_database_url="sqlite:///b.db")
    with pytest.raises(SettingsError, match=WHERE):
        WorkerConfig(dlq_enabled=False)


def test_the_worker_fails_at_start_up_with_where_dead_letters_live(tmp_path: Path) -> None:
    settings = {
        "PYSTATOR_DATABASE_URL": f"sqlite:///{tmp_path / 'w.db'}",
        "PYSTATOR_WORKER_DLQ_TABLE_NAME": "dead_letter_queue",
    }
    done = run(["worker", "--concurrency", "1"], settings, cwd=tmp_path)
    assert done.returncode != 0
    assert WHERE in done.stderr + done.stdout
    assert "Traceback" not in done.stderr + done.stdout
