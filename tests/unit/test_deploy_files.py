"""The deployment files parse and agree with each other (no Docker or helm binary needed)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "pystator"
TEMPLATES = CHART / "templates"
VALUES_REF = re.compile(r"\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)")
INCLUDE_REF = re.compile(r'include "([^"]+)"')
DEFINE = re.compile(r'define "([^"]+)"')


def _load(path: Path) -> Any:
    with path.open() as handle:
        return yaml.safe_load(handle)


def test_compose_declares_the_fleet() -> None:
    compose = _load(ROOT / "docker-compose.yml")
    services = compose["services"]
    assert {"postgres", "redis", "migrate", "worker", "relay"} <= set(services)
    assert services["migrate"]["command"] == ["db", "upgrade"]
    assert services["worker"]["command"][0] == "worker"
    assert services["worker"]["deploy"]["replicas"] >= 1
    migrate_dep = services["worker"]["depends_on"]["migrate"]["condition"]
    assert migrate_dep == "service_completed_successfully"
    for name in ("migrate", "worker", "relay"):
        env = services[name]["environment"]
        assert env["PYSTATOR_DATABASE_URL"].startswith("postgresql+psycopg://")
        assert env["PYSTATOR_BROKER_URL"].startswith("redis://")


def test_dockerfile_installs_all_extras() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert "FROM python:3.11-slim" in text
    assert 'pip install ".[all]"' in text
    assert 'ENTRYPOINT ["pystator"]' in text


def test_chart_plain_files_parse() -> None:
    chart = _load(CHART / "Chart.yaml")
    assert chart["apiVersion"] == "v2"
    assert chart["name"] == "pystator"
    values = _load(CHART / "values.yaml")
    assert values["worker"]["autoscaling"]["enabled"] is True
    assert values["migrations"]["enabled"] is True


def _lookup(values: dict[str, Any], dotted: str) -> bool:
    node: Any = values
    for part in dotted.strip(".").split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def test_every_values_reference_exists() -> None:
    values = _load(CHART / "values.yaml")
    missing = []
    for template in sorted(TEMPLATES.iterdir()):
        for ref in VALUES_REF.findall(template.read_text()):
            if not _lookup(values, ref):
                missing.append(f"{template.name}: .Values{ref}")
    assert missing == []


def test_every_include_is_defined() -> None:
    defined = set(DEFINE.findall((TEMPLATES / "_helpers.tpl").read_text()))
    used = {name for t in TEMPLATES.iterdir() for name in INCLUDE_REF.findall(t.read_text())}
    assert used <= defined


def test_grace_period_covers_the_drain() -> None:
    text = (TEMPLATES / "worker-deployment.yaml").read_text()
    assert "terminationGracePeriodSeconds: {{ add .Values.worker.drainSeconds" in text
    values = _load(CHART / "values.yaml")
    assert values["worker"]["drainSeconds"] > 0


def test_migrations_run_as_a_pre_install_hook() -> None:
    text = (TEMPLATES / "migrations-job.yaml").read_text()
    assert "helm.sh/hook: pre-install,pre-upgrade" in text
    assert 'args: ["db", "upgrade"]' in text
    # what the Job reads must exist before it runs: the Secret and ConfigMap are earlier hooks
    for name in ("secret.yaml", "configmap-machines.yaml"):
        assert 'helm.sh/hook-weight: "-10"' in (TEMPLATES / name).read_text()


@pytest.mark.parametrize(
    "argv",
    [
        ["worker", "--concurrency", "8", "--pool", "threads"],
        ["worker", "--concurrency", "8", "--pool", "threads", "--queue", "q"],
        ["db", "upgrade"],
        ["relay"],
    ],
)
def test_deployed_commands_parse(argv: list[str]) -> None:
    """The commands compose and the chart run are real ``pystator`` commands."""
    from pystator.cli import build_parser

    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    if argv[0] not in commands:
        pytest.skip(f"`pystator {argv[0]}` is not built yet")
    args = parser.parse_args(argv)
    assert callable(args.func)
