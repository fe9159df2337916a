"""The API's settings: defaults, validation, pystator.cfg sections, and the masked report."""

from __future__ import annotations

from pathlib import Path

import pytest

from pystator.config.settings import describe_settings, load_settings, mask
from pystator.fsm_core.errors import SettingsError


def test_api_defaults() -> None:
    settings = load_settings({}, config_file="/nonexistent")
    assert (settings.api_host, settings.api_port, settings.api_db_pool_size) == (
        "127.0.0.1",
        8000,
        5,
    )
    assert settings.api_jwt_secret is None


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"PYSTATOR_API_DB_POOL_SIZE": "2"}, "PYSTATOR_API_DB_POOL_SIZE"),
        ({"PYSTATOR_API_PORT": "http"}, "PYSTATOR_API_PORT"),
        ({"PYSTATOR_API_JWT_ALGORITHM": "none"}, "PYSTATOR_API_JWT_ALGORITHM"),
        ({"PYSTATOR_API_PAGE_LIMIT": "0"}, "PYSTATOR_API_PAGE_LIMIT"),
    ],
)
def test_bad_api_settings_fail_with_their_name(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        load_settings(env, config_file="/nonexistent")


def test_cfg_sections_and_environment_precedence(tmp_path: Path) -> None:
    cfg = tmp_path / "pystator.cfg"
    cfg.write_text(
        "[pystator]\napi_port = 9000\n\n"
        "[database]\nPYSTATOR_DATABASE_URL = postgresql://app:s3cret@db:5432/fleet\n\n"
        "[auth]\nPYSTATOR_API_JWT_SECRET = file-secret\n"
    )
    settings = load_settings({"PYSTATOR_API_PORT": "9100"}, config_file=cfg)
    assert settings.api_port == 9100  # the environment wins
    assert settings.database_url == "postgresql://app:s3cret@db:5432/fleet"
    assert settings.api_jwt_secret == "file-secret"
    report = {
        name: (value, source)
        for name, value, source in describe_settings({"PYSTATOR_API_PORT": "9100"}, config_file=cfg)
    }
    assert report["PYSTATOR_API_PORT"] == ("9100", "env")
    assert report["PYSTATOR_DATABASE_URL"] == ("postgresql://app:***@db:5432/fleet", str(cfg))
    assert report["PYSTATOR_API_JWT_SECRET"] == ("***", str(cfg))
    assert report["PYSTATOR_API_HOST"] == ("127.0.0.1", "default")
    assert "s3cret" not in repr(report) and "file-secret" not in repr(report)


def test_mask_leaves_urls_without_password() -> None:
    assert mask("broker_url", "redis://localhost:6379/0") == "redis://localhost:6379/0"
    assert mask("redis_url", "redis://:pw@h:1/0") == "redis://:***@h:1/0"
    assert mask("api_jwt_secret", None) == ""
