"""Render the Helm chart in-process and validate what it renders (no helm binary, no cluster).

``helm-python-sdk`` binds Helm's own Go SDK (the wheel bundles it), so rendering, values schema
validation and lint are Helm's, not an imitation. Kubernetes objects are checked against the
Kubernetes 1.30 OpenAPI schemas shipped by ``kubernetes-validate``; custom resources (KEDA,
Prometheus Operator) against their CRDs' schemas, vendored in ``tests/fixtures/schemas``.
"""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import helm_python as helm
import jsonschema
import kubernetes_validate
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "pystator"
CI_VALUES = CHART / "ci"
SCHEMAS = ROOT / "tests" / "fixtures" / "schemas"
KUBERNETES_VERSION = "1.30.0"
RELEASE = "fleet"
NAMESPACE = "jobs"

#: CRD file per custom resource (apiVersion group, kind) the chart may render.
CRD_FILES = {
    ("keda.sh", "ScaledObject"): "keda.sh_scaledobjects.yaml",
    ("keda.sh", "TriggerAuthentication"): "keda.sh_triggerauthentications.yaml",
    ("monitoring.coreos.com", "ServiceMonitor"): "monitoring.coreos.com_servicemonitors.yaml",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Rendered:
    """One object the chart rendered, with the template it came from."""

    template: str
    body: dict[str, Any]

    @property
    def kind(self) -> str:
        return str(self.body["kind"])

    @property
    def name(self) -> str:
        return str(self.body["metadata"]["name"])


@dataclass(frozen=True, slots=True, kw_only=True)
class Release:
    """Everything one render produced: the objects and NOTES.txt."""

    objects: list[Rendered]
    notes: str

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [o.body for o in self.objects if o.kind == kind]

    def one(self, kind: str, name: str) -> dict[str, Any]:
        found = [o.body for o in self.objects if o.kind == kind and o.name == name]
        assert len(found) == 1, f"{kind}/{name}: {len(found)} rendered"
        return found[0]

    def kinds(self) -> set[str]:
        return {o.kind for o in self.objects}


def ci_values_files() -> list[Path]:
    """The chart's test values files (``helm/pystator/ci/*-values.yaml``)."""
    return sorted(CI_VALUES.glob("*-values.yaml"))


def load_values(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict), path
    return data


def chart_defaults() -> dict[str, Any]:
    return load_values(CHART / "values.yaml")


def merged(*layers: Mapping[str, Any]) -> dict[str, Any]:
    """Deep-merge values layers like Helm (later layers win, dicts merge, ``None`` deletes)."""
    out: dict[str, Any] = {}
    for layer in layers:
        _merge_into(out, layer)
    return out


def _merge_into(target: dict[str, Any], layer: Mapping[str, Any]) -> None:
    for key, value in layer.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(target.get(key), dict):
            _merge_into(target[key], value)
        else:
            target[key] = copy.deepcopy(value)


@functools.cache
def _chart() -> helm.Chart:
    return helm.Chart.load(CHART)


def render(values: Mapping[str, Any], *, upgrade: bool = False) -> Release:
    """Render the chart as ``helm install fleet helm/pystator -n jobs -f values`` would."""
    manifests = _chart().render(
        dict(values),
        name=RELEASE,
        namespace=NAMESPACE,
        is_install=not upgrade,
        is_upgrade=upgrade,
    )
    objects: list[Rendered] = []
    notes = ""
    for template, text in sorted(manifests.items()):
        if template.endswith("NOTES.txt"):
            notes = text
            continue
        for body in yaml.safe_load_all(text):
            if body is not None:
                objects.append(Rendered(template=template, body=body))
    return Release(objects=objects, notes=notes)


def validate_schema(values: Mapping[str, Any]) -> None:
    """Helm's own check of ``values`` (merged with the defaults) against values.schema.json."""
    _chart().validate_schema(dict(values))


def lint(values: Mapping[str, Any]) -> dict[str, Any]:
    """``helm lint --strict --kube-version v1.30.0`` on the chart with ``values``."""
    return helm.lint(CHART, dict(values), strict=True, kube_version=f"v{KUBERNETES_VERSION}")


# --- validation of rendered objects ----------------------------------------------------------


def validate_object(body: dict[str, Any]) -> None:
    """Raise unless ``body`` is a valid object for Kubernetes 1.30 (or for its CRD)."""
    group = str(body["apiVersion"]).rpartition("/")[0]
    crd = CRD_FILES.get((group, body["kind"]))
    if crd is None:
        kubernetes_validate.validate(body, KUBERNETES_VERSION, strict=True)
        return
    _crd_validator(crd, str(body["apiVersion"])).validate(body)
    # A CRD's schema leaves metadata open: check it as the ObjectMeta of a built-in kind.
    as_builtin = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": body["metadata"]}
    kubernetes_validate.validate(as_builtin, KUBERNETES_VERSION, strict=True)


@functools.cache
def _crd_validator(filename: str, api_version: str) -> jsonschema.Draft7Validator:
    crd = yaml.safe_load((SCHEMAS / filename).read_text())
    version = api_version.rpartition("/")[2]
    served = [v for v in crd["spec"]["versions"] if v["name"] == version and v["served"]]
    assert served, f"{filename}: {api_version} is not served"
    schema = _closed(served[0]["schema"]["openAPIV3Schema"])
    return jsonschema.Draft7Validator(schema)


def _closed(node: Any) -> Any:
    """The schema with unknown fields refused (the API server would prune or reject them)."""
    if isinstance(node, list):
        return [_closed(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _closed(value) for key, value in node.items()}
    open_ended = out.get("x-kubernetes-preserve-unknown-fields") or "additionalProperties" in out
    if "properties" in out and not open_ended:
        out["additionalProperties"] = False
    return out


# --- walking pod templates -------------------------------------------------------------------

WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "Job")


def pod_specs(release: Release) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(kind/name, pod spec)`` of every workload the release renders."""
    for obj in release.objects:
        if obj.kind in WORKLOAD_KINDS:
            yield f"{obj.kind}/{obj.name}", obj.body["spec"]["template"]["spec"]


def containers(release: Release) -> Iterator[tuple[str, str, dict[str, Any], dict[str, Any]]]:
    """``(workload kind, workload, container, pod spec)`` for every container, init ones too."""
    for workload, spec in pod_specs(release):
        for container in spec.get("initContainers", []) + spec["containers"]:
            yield workload.partition("/")[0], workload, container, spec


def dump(obj: Any) -> str:
    return json.dumps(obj, indent=1, sort_keys=True)
