"""Retention settings: parsed from the environment and ``pystator.cfg``, 0 meaning forever."""

from __future__ import annotations

from pathlib import Path

import pytest

from pystator.config.settings import load_settings
from pystator.fleet.retention import RetentionPolicy
from pystator.fsm_core.errors import SettingsError


def test_defaults_are_documented_windows(tmp_path: Path) -> None:
    policy = RetentionPolicy.from_settings(load_settings({}, tmp_path / "none.cfg"))
    assert policy.windows == {
        "completed": 7.0,
        "rejected": 30.0,
        "history": 90.0,
        "actions": 7.0,
        "audit": 365.0,
        "rollups": 400.0,
        "heartbeats": 7.0,
        "webhooks": 30.0,
    }
    assert policy.batch_rows == 1000 and policy.archive_dir is None


def test_environment_and_file_set_the_windows(tmp_path: Path) -> None:
    cfg = tmp_path / "pystator.cfg"
    cfg.write_text("[pystator]\nretention_history_days = 0\nprune_archive_dir = /var/archive\n")
    settings = load_settings(
        {"PYSTATOR_RETENTION_COMPLETED_DAYS": "1.5", "PYSTATOR_PRUNE_BATCH_ROWS": "250"}, cfg
    )
    policy = RetentionPolicy.from_settings(settings)
    assert policy.windows["completed"] == 1.5
    assert policy.windows["history"] == 0.0
    assert policy.batch_rows == 250
    assert str(policy.archive_dir) == "/var/archive"
    assert settings.prune_interval_seconds == 300.0


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PYSTATOR_RETENTION_AUDIT_DAYS", "-1"),
        ("PYSTATOR_PRUNE_BATCH_ROWS", "0"),
        ("PYSTATOR_PRUNE_INTERVAL_SECONDS", "-5"),
        ("PYSTATOR_RETENTION_COMPLETED_DAYS", "a week"),
    ],
)
def test_bad_values_fail_with_the_settings_name(name: str, value: str, tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match=name):
        load_settings({name: value}, tmp_path / "none.cfg")
