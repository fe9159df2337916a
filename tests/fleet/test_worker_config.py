"""``WorkerConfig``: the public package's worker settings, read as ours (no services needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pystator.config.settings import Settings, load_settings
from pystator.errors import SettingsError
from pystator.worker import Worker, WorkerConfig


def from_env(**env: str) -> WorkerConfig:
    return WorkerConfig.from_env(env, config_file="/nonexistent/pystator.cfg")


def test_defaults_are_our_settings_defaults() -> None:
    config = from_env()
    assert config == WorkerConfig(
        db_url="sqlite:///pystator.db",
        poll_interval_ms=50,
        concurrency=2,
        drain_timeout_s=30.0,
        max_attempts=5,
        machine_source=None,
        machine_dir=None,
        worker_id=None,
        dlq_enabled=True,  # dead letters are always recorded (rows of worker_events)
    )


def test_every_field_reads_its_pystator_worker_variable() -> None:
    config = from_env(
        PYSTATOR_WORKER_DB_URL="postgresql+psycopg://db/app",
        PYSTATOR_WORKER_POLL_INTERVAL_MS="250",
        PYSTATOR_WORKER_CONCURRENCY="10",
        PYSTATOR_WORKER_DRAIN_TIMEOUT_S="60",
        PYSTATOR_WORKER_MAX_ATTEMPTS="7",
        PYSTATOR_WORKER_MACHINE_SOURCE="yaml",
        PYSTATOR_WORKER_MACHINE_DIR="machines/",
        PYSTATOR_WORKER_ID="w-1",
    )
    assert config == WorkerConfig(
        db_url="postgresql+psycopg://db/app",
        poll_interval_ms=250,
        concurrency=10,
        drain_timeout_s=60.0,
        max_attempts=7,
        machine_source="yaml",
        machine_dir="machines/",
        worker_id="w-1",
        dlq_enabled=True,
    )


def test_shared_fields_are_our_existing_settings() -> None:
    settings = load_settings(
        {"PYSTATOR_WORKER_DB_URL": "sqlite:///w.db", "PYSTATOR_WORKER_MAX_ATTEMPTS": "3"},
        config_file="/nonexistent/pystator.cfg",
    )
    assert (settings.database_url, settings.max_attempts) == ("sqlite:///w.db", 3)
    config = from_env(PYSTATOR_DATABASE_URL="sqlite:///a.db", PYSTATOR_MACHINES="m/")
    assert (config.db_url, config.machine_dir) == ("sqlite:///a.db", "m/")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"PYSTATOR_WORKER_CONCURRENCY": "lots"}, "PYSTATOR_WORKER_CONCURRENCY='lots'"),
        ({"PYSTATOR_WORKER_CONCURRENCY": "0"}, "PYSTATOR_WORKER_CONCURRENCY must be a positive"),
        ({"PYSTATOR_WORKER_POLL_INTERVAL_MS": "-5"}, "PYSTATOR_WORKER_POLL_INTERVAL_MS must"),
        ({"PYSTATOR_WORKER_DRAIN_TIMEOUT_S": "soon"}, "PYSTATOR_WORKER_DRAIN_TIMEOUT_S='soon'"),
        ({"PYSTATOR_WORKER_MAX_ATTEMPTS": "x"}, "PYSTATOR_WORKER_MAX_ATTEMPTS='x'"),
        ({"PYSTATOR_WORKER_MAX_ATTEMPTS": "0"}, "PYSTATOR_WORKER_MAX_ATTEMPTS)"),
        ({"PYSTATOR_WORKER_MACHINE_SOURCE": "files"}, "expected one of yaml, db"),
        ({"PYSTATOR_WORKER_MACHINE_SOURCE": "yaml"}, "needs PYSTATOR_MACHINES"),
        ({"PYSTATOR_WORKER_ID": "  "}, "PYSTATOR_WORKER_ID must not be blank"),
        ({"PYSTATOR_WORKER_ID": "w" * 201}, "PYSTATOR_WORKER_ID is 201 characters long"),
        (
            {"PYSTATOR_DATABASE_URL": "sqlite:///a.db", "PYSTATOR_WORKER_DB_URL": "sqlite:///b"},
            "PYSTATOR_DATABASE_URL and PYSTATOR_WORKER_DB_URL",
        ),
    ],
)
def test_a_bad_value_names_its_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message.replace("(", r"\(").replace(")", r"\)")):
        from_env(**env)


def test_pystator_cfg_worker_section_uses_the_variable_names(tmp_path: Path) -> None:
    cfg = tmp_path / "pystator.cfg"
    cfg.write_text(
        "[worker]\nPYSTATOR_WORKER_CONCURRENCY = 10\nPYSTATOR_WORKER_DB_URL = sqlite:///c.db\n"
    )
    config = WorkerConfig.from_env({}, config_file=cfg)
    assert (config.concurrency, config.db_url) == (10, "sqlite:///c.db")


def test_constructor_arguments_override_the_settings() -> None:
    base = Settings(database_url="sqlite:///base.db", machines="m/")
    worker = Worker(WorkerConfig(concurrency=8, machine_source="db"), settings=base)
    assert worker.settings.worker_concurrency == 8
    assert worker.settings.database_url == "sqlite:///base.db"
    assert worker.settings.machine_files is None  # db: the database registry only
    assert Settings(machines="m/").machine_files == "m/"


def test_a_bad_constructor_value_is_refused_when_the_worker_is_built() -> None:
    with pytest.raises(SettingsError, match="PYSTATOR_WORKER_CONCURRENCY must be a positive"):
        Worker(WorkerConfig(concurrency=0), settings=Settings())
    with pytest.raises(
        SettingsError, match="PYSTATOR_WORKER_ID is 201 characters long; at most 200"
    ):
        WorkerConfig(worker_id="w" * 201)
