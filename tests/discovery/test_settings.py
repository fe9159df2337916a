"""The discovery settings: environment, ``[discovery]`` in pystator.cfg, checks, ``config show``."""

from __future__ import annotations

from pathlib import Path

import pytest

from pystator.cli import main
from pystator.config.settings import describe_settings, load_settings
from pystator.fsm_core.errors import SettingsError


def test_defaults_and_the_fallback_to_the_main_database() -> None:
    settings = load_settings({"PYSTATOR_DATABASE_URL": "sqlite:///main.db"}, config_file="/none")
    assert settings.discovery_database_url is None
    assert settings.discovery_url == "sqlite:///main.db"
    assert (settings.discovery_shadow_enabled, settings.discovery_min_edge_count) == (False, 2)
    assert settings.discovery_min_confidence == 0.05
    own = load_settings(
        {
            "PYSTATOR_DATABASE_URL": "sqlite:///main.db",
            "PYSTATOR_DISCOVERY_DATABASE_URL": "postgresql://u:pw@db/discovery",
        },
        config_file="/none",
    )
    assert own.discovery_url == "postgresql://u:pw@db/discovery"


def test_the_discovery_section_of_pystator_cfg(tmp_path: Path) -> None:
    cfg = tmp_path / "pystator.cfg"
    cfg.write_text(
        "[discovery]\n"
        "min_edge_count = 5\n"
        "PYSTATOR_DISCOVERY_SHADOW_ENABLED = yes\n"
        "database_url = postgresql://u:pw@db/discovery\n"
    )
    env = {"PYSTATOR_DISCOVERY_MIN_CONFIDENCE": "0.2"}
    settings = load_settings(env, config_file=cfg)
    assert settings.discovery_min_edge_count == 5
    assert settings.discovery_shadow_enabled is True
    assert settings.discovery_min_confidence == 0.2
    assert settings.discovery_database_url == "postgresql://u:pw@db/discovery"
    assert settings.database_url == "sqlite:///pystator.db"  # [discovery] names only discovery's
    report = {
        name: (value, source) for name, value, source in describe_settings(env, config_file=cfg)
    }
    assert report["PYSTATOR_DISCOVERY_MIN_EDGE_COUNT"] == ("5", str(cfg))
    assert report["PYSTATOR_DISCOVERY_MIN_CONFIDENCE"] == ("0.2", "env")
    assert report["PYSTATOR_DISCOVERY_SHADOW_ENABLED"] == ("True", str(cfg))
    assert report["PYSTATOR_DISCOVERY_DATABASE_URL"] == (
        "postgresql://u:***@db/discovery",
        str(cfg),
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"PYSTATOR_DISCOVERY_MIN_EDGE_COUNT": "0"}, "PYSTATOR_DISCOVERY_MIN_EDGE_COUNT must be"),
        ({"PYSTATOR_DISCOVERY_MIN_EDGE_COUNT": "two"}, "PYSTATOR_DISCOVERY_MIN_EDGE_COUNT="),
        ({"PYSTATOR_DISCOVERY_MIN_CONFIDENCE": "1.5"}, "PYSTATOR_DISCOVERY_MIN_CONFIDENCE must be"),
        ({"PYSTATOR_DISCOVERY_SHADOW_ENABLED": "maybe"}, "PYSTATOR_DISCOVERY_SHADOW_ENABLED="),
    ],
)
def test_bad_values_fail_with_their_name(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        load_settings(env, config_file="/none")


def test_config_show_lists_them(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PYSTATOR_DISCOVERY_MIN_EDGE_COUNT", "4")
    assert main(["config", "show"]) == 0
    lines = capsys.readouterr().out.splitlines()
    shown = {
        line.split()[0]: line.split()[1:] for line in lines if line.startswith("PYSTATOR_DISCOVERY")
    }
    assert set(shown) == {
        "PYSTATOR_DISCOVERY_DATABASE_URL",
        "PYSTATOR_DISCOVERY_SHADOW_ENABLED",
        "PYSTATOR_DISCOVERY_MIN_EDGE_COUNT",
        "PYSTATOR_DISCOVERY_MIN_CONFIDENCE",
    }
    assert shown["PYSTATOR_DISCOVERY_MIN_EDGE_COUNT"] == ["4", "(env)"]
