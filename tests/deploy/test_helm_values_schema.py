"""``values.schema.json`` accepts the chart's values files and refuses wrong values.

Each bad value is refused twice: by Helm itself (what ``helm install`` does before rendering)
and by the ``jsonschema`` package under draft 7 (what Helm 3's validator implements), so the
schema works for both Helm generations.
"""

from __future__ import annotations

import json
from typing import Any

import helm_python as helm
import jsonschema
import pytest

from tests.support.helm_chart import (
    CHART,
    CI_VALUES,
    chart_defaults,
    ci_values_files,
    load_values,
    merged,
    render,
    validate_schema,
)

SCHEMA = json.loads((CHART / "values.schema.json").read_text())
BASE = load_values(CI_VALUES / "default-values.yaml")


def _draft7(values: dict[str, Any]) -> list[str]:
    validator = jsonschema.Draft7Validator(SCHEMA)
    return [error.json_path for error in validator.iter_errors(merged(chart_defaults(), values))]


def test_the_schema_is_valid_draft_7() -> None:
    jsonschema.Draft7Validator.check_schema(SCHEMA)


def test_the_defaults_and_every_ci_file_pass() -> None:
    assert _draft7({}) == []
    for path in ci_values_files():
        values = load_values(path)
        validate_schema(values)
        assert _draft7(values) == [], path.name


BAD: list[tuple[str, dict[str, Any], str]] = [
    ("unknown-top-level-key", {"replicaCount": 3}, "replicaCount"),
    ("typo-in-a-nested-key", {"worker": {"autoscalling": {}}}, "autoscalling"),
    ("autoscaling-mode", {"worker": {"autoscaling": {"mode": "cpu"}}}, "/worker/autoscaling/mode"),
    ("zero-concurrency", {"worker": {"concurrency": 0}}, "/worker/concurrency"),
    ("replicas-as-text", {"worker": {"replicas": "two"}}, "/worker/replicas"),
    ("unknown-pool", {"worker": {"pool": "gevent"}}, "/worker/pool"),
    (
        "hpa-cannot-scale-to-zero",
        {"worker": {"autoscaling": {"mode": "hpa", "minReplicas": 0}}},
        "/worker/autoscaling/minReplicas",
    ),
    (
        "prometheus-trigger-without-server",
        {"worker": {"autoscaling": {"keda": {"trigger": "prometheus"}}}},
        "/worker/autoscaling/keda/prometheus/serverAddress",
    ),
    (
        "scaler-query-that-is-not-a-select",
        {"worker": {"autoscaling": {"keda": {"query": "DELETE FROM worker_events"}}}},
        "/worker/autoscaling/keda/query",
    ),
    (
        "sqlite-database",
        {"secret": {"databaseUrl": "sqlite:///pystator.db"}},
        "/secret/databaseUrl",
    ),
    ("in-process-broker", {"secret": {"brokerUrl": "memory://"}}, "/secret/brokerUrl"),
    (
        "credentials-in-plain-env",
        {"env": {"PYSTATOR_DATABASE_URL": "postgresql://u:p@db/app"}},
        "PYSTATOR_DATABASE_URL",
    ),
    (
        "probe-never-failing",
        {"worker": {"probes": {"liveness": {"failureThreshold": 0}}}},
        "/failureThreshold",
    ),
    ("privileged-metrics-port", {"worker": {"metrics": {"port": 80}}}, "/worker/metrics/port"),
    (
        "root-container",
        {"securityContext": {"runAsNonRoot": False}},
        "/securityContext/runAsNonRoot",
    ),
    (
        "privilege-escalation",
        {"securityContext": {"allowPrivilegeEscalation": True}},
        "/securityContext/allowPrivilegeEscalation",
    ),
    (
        "privileged-container",
        {"securityContext": {"privileged": True}},
        "/securityContext/privileged",
    ),
    (
        "added-capability",
        {"securityContext": {"capabilities": {"add": ["NET_ADMIN"]}}},
        "/securityContext/capabilities/add",
    ),
    (
        "unconfined-seccomp",
        {"podSecurityContext": {"seccompProfile": {"type": "Unconfined"}}},
        "/podSecurityContext/seccompProfile/type",
    ),
    (
        "no-limits",
        {"worker": {"resources": {"limits": None}}},
        "/worker/resources",
    ),
    ("floating-image-tag", {"image": {"tag": "latest"}}, "/image/tag"),
    ("ingress-without-hosts", {"api": {"ingress": {"enabled": True}}}, "/api/ingress/hosts"),
    (
        "scrape-interval-prose",
        {"serviceMonitor": {"interval": "30 seconds"}},
        "/serviceMonitor/interval",
    ),
    ("negative-connection-limit", {"database": {"maxConnections": -1}}, "/database/maxConnections"),
]


@pytest.mark.parametrize(
    ("values", "where"), [(v, w) for _, v, w in BAD], ids=[i for i, _, _ in BAD]
)
def test_wrong_values_are_refused(values: dict[str, Any], where: str) -> None:
    values = merged(BASE, values)
    with pytest.raises(helm.HelmValuesError) as refused:
        validate_schema(values)
    assert where.split("/")[-1] in str(refused.value)
    # install renders refuse them too, before any template runs
    with pytest.raises(helm.HelmValuesError):
        render(values)
    assert _draft7(values), "jsonschema (draft 7) accepted it"
