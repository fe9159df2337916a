"""The Helm chart, rendered by Helm's own engine and checked object by object.

Every values file in ``helm/pystator/ci/`` is rendered; every object must validate against the
Kubernetes 1.30 schemas (or its CRD's), every container must be locked down and sized, and every
long-running one probed. The autoscaling modes, the Secret and the connection budget are checked
on what the chart actually renders.
"""

from __future__ import annotations

import re
from typing import Any

import helm_python as helm
import pytest

from tests.support.deploy_commands import check_commands
from tests.support.helm_chart import (
    CI_VALUES,
    NAMESPACE,
    Release,
    chart_defaults,
    ci_values_files,
    containers,
    dump,
    lint,
    load_values,
    pod_specs,
    render,
    validate_object,
)

CI_FILES = ci_values_files()
CI_IDS = [p.name.removesuffix("-values.yaml") for p in CI_FILES]
FULLNAME = "fleet-pystator"
WORKER = f"{FULLNAME}-worker"
API = f"{FULLNAME}-api"
SECRET = f"{FULLNAME}-secret"
PROBES = ("startupProbe", "livenessProbe", "readinessProbe")


def _ci(name: str) -> dict[str, Any]:
    return load_values(CI_VALUES / f"{name}-values.yaml")


@pytest.fixture(scope="module", params=CI_FILES, ids=CI_IDS)
def release(request: pytest.FixtureRequest) -> Release:
    return render(load_values(request.param))


@pytest.fixture(scope="module")
def default() -> Release:
    return render(_ci("default"))


def test_the_ci_files_cover_the_cases_the_chart_must_serve() -> None:
    assert set(CI_IDS) >= {"default", "hpa", "autoscaling-off", "existing-secret", "ingress"}


# --- every values file -----------------------------------------------------------------------


def test_every_object_is_valid_for_kubernetes_1_30(release: Release) -> None:
    assert release.objects
    for obj in release.objects:
        try:
            validate_object(obj.body)
        except Exception as exc:
            pytest.fail(f"{obj.template}: {obj.kind}/{obj.name} is invalid: {exc}")


def test_every_container_is_sized_and_locked_down(release: Release) -> None:
    seen = 0
    for _kind, workload, container, pod in containers(release):
        seen += 1
        where = f"{workload} container {container['name']}"
        resources = container.get("resources", {})
        assert {"cpu", "memory"} <= set(resources.get("requests", {})), where
        assert "memory" in resources.get("limits", {}), where
        security = container.get("securityContext", {})
        assert security.get("runAsNonRoot") is True, where
        assert security.get("seccompProfile") == {"type": "RuntimeDefault"}, where
        assert security.get("allowPrivilegeEscalation") is False, where
        assert security.get("readOnlyRootFilesystem") is True, where
        assert security.get("capabilities", {}).get("drop") == ["ALL"], where
        assert not security.get("privileged"), where
        assert pod["securityContext"]["runAsNonRoot"] is True, where
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, where
        assert pod["automountServiceAccountToken"] is False, where
        # the root filesystem is read-only: /tmp is the one writable place
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        assert mounts.get("/tmp") in {v["name"] for v in pod["volumes"] if "emptyDir" in v}
    assert seen >= 1


def test_every_long_running_container_has_startup_liveness_and_readiness_probes(
    release: Release,
) -> None:
    deployments = 0
    for kind, workload, container, _pod in containers(release):
        if kind != "Deployment":
            continue
        deployments += 1
        missing = [p for p in PROBES if p not in container]
        assert not missing, f"{workload}: no {missing}"
        for probe in PROBES:
            assert container[probe]["timeoutSeconds"] >= 1
            assert container[probe]["failureThreshold"] >= 1
    assert deployments >= 1


def test_every_reference_between_objects_resolves(release: Release) -> None:
    """Selectors, scale targets, ports and backends all name something the release renders."""
    pods = {name: spec for name, spec in pod_specs(release)}
    templates = [
        o.body["spec"]["template"] for o in release.objects if o.kind in ("Deployment", "Job")
    ]

    def selects_pods(selector: dict[str, str]) -> bool:
        return any(
            selector.items() <= t["metadata"]["labels"].items()
            for t in templates
            if "labels" in t["metadata"]
        )

    deployments = {d["metadata"]["name"] for d in release.of_kind("Deployment")}
    for service in release.of_kind("Service"):
        assert selects_pods(service["spec"]["selector"]), service["metadata"]["name"]
    for pdb in release.of_kind("PodDisruptionBudget"):
        assert selects_pods(pdb["spec"]["selector"]["matchLabels"]), pdb["metadata"]["name"]
    for scaler in release.of_kind("HorizontalPodAutoscaler") + release.of_kind("ScaledObject"):
        assert scaler["spec"]["scaleTargetRef"]["name"] in deployments
    services = {s["metadata"]["name"]: s for s in release.of_kind("Service")}
    for monitor in release.of_kind("ServiceMonitor"):
        wanted = monitor["spec"]["selector"]["matchLabels"].items()
        chosen = [s for s in services.values() if wanted <= s["metadata"]["labels"].items()]
        assert len(chosen) == 1, monitor["metadata"]["name"]
        port_names = {p["name"] for p in chosen[0]["spec"]["ports"]}
        assert {e["port"] for e in monitor["spec"]["endpoints"]} <= port_names
    for ingress in release.of_kind("Ingress"):
        for rule in ingress["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                backend = path["backend"]["service"]
                ports = {p["name"] for p in services[backend["name"]]["spec"]["ports"]}
                assert backend["port"]["name"] in ports
    # every named container port a probe or Service targets exists on the pods
    for name, spec in pods.items():
        for container in spec["containers"]:
            declared = {p["name"] for p in container.get("ports", [])}
            for probe in PROBES:
                port = container.get(probe, {}).get("httpGet", {}).get("port")
                assert port is None or port in declared, f"{name}: {probe} port {port}"
    secret_names = {s["metadata"]["name"] for s in release.of_kind("Secret")}
    for auth in release.of_kind("TriggerAuthentication"):
        for ref in auth["spec"]["secretTargetRef"]:
            assert ref["name"] in secret_names or not secret_names


def test_helm_lint_is_clean(release: Release, request: pytest.FixtureRequest) -> None:
    values = load_values(request.node.callspec.params["release"])
    report = lint(values)
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert report["errors"] == [] and problems == [], dump(report)


def test_the_machines_and_secret_checksums_roll_the_pods(release: Release) -> None:
    for deployment in release.of_kind("Deployment"):
        annotations = deployment["spec"]["template"]["metadata"]["annotations"]
        assert re.fullmatch(r"[0-9a-f]{64}", annotations["checksum/machines"])
        assert re.fullmatch(r"[0-9a-f]{64}", annotations["checksum/secret"])


# --- workers and autoscaling -----------------------------------------------------------------


def _worker_container(release: Release) -> dict[str, Any]:
    deployment = release.one("Deployment", WORKER)
    container: dict[str, Any] = deployment["spec"]["template"]["spec"]["containers"][0]
    return container


def test_worker_probes_run_pystator_health(default: Release) -> None:
    container = _worker_container(default)
    liveness = ["pystator", "health", "--liveness", "--stall-seconds", "60"]
    assert container["livenessProbe"]["exec"]["command"] == liveness
    # the startup probe is the liveness check: it passes at the worker's first heartbeat
    assert container["startupProbe"]["exec"]["command"] == liveness
    assert container["readinessProbe"]["exec"]["command"] == ["pystator", "health", "--readiness"]
    startup = container["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 120


def test_worker_runs_its_metrics_port(default: Release) -> None:
    container = _worker_container(default)
    assert container["args"][-2:] == ["--metrics-port", "9100"]
    assert container["ports"] == [{"name": "metrics", "containerPort": 9100, "protocol": "TCP"}]
    service = default.one("Service", f"{WORKER}-metrics")
    assert service["spec"]["clusterIP"] == "None"


def test_grace_period_covers_the_drain(default: Release) -> None:
    from pystator.commands.worker import DRAIN_TIMEOUT_SECONDS

    values = chart_defaults()["worker"]
    # the worker's own drain timeout (not yet a setting): the chart's default must match it
    assert values["drainSeconds"] == DRAIN_TIMEOUT_SECONDS
    pod = default.one("Deployment", WORKER)["spec"]["template"]["spec"]
    expected = values["drainSeconds"] + values["terminationMarginSeconds"]
    assert pod["terminationGracePeriodSeconds"] == expected > values["drainSeconds"]


def test_keda_scales_the_workers_on_the_due_backlog_by_default(default: Release) -> None:
    assert chart_defaults()["worker"]["autoscaling"]["mode"] == "keda"
    assert "HorizontalPodAutoscaler" not in default.kinds()
    # the autoscaler owns the replica count
    assert "replicas" not in default.one("Deployment", WORKER)["spec"]
    scaled = default.one("ScaledObject", WORKER)["spec"]
    assert (scaled["minReplicaCount"], scaled["maxReplicaCount"]) == (2, 10)
    assert scaled["cooldownPeriod"] == 300 and scaled["pollingInterval"] == 15
    assert scaled["fallback"]["replicas"] >= 1
    [trigger] = scaled["triggers"]
    keda = chart_defaults()["worker"]["autoscaling"]["keda"]
    assert trigger["type"] == "postgresql"
    assert trigger["metadata"] == {
        "query": keda["query"],
        "targetQueryValue": "200",
        "activationTargetQueryValue": "0",
    }
    auth = default.one("TriggerAuthentication", trigger["authenticationRef"]["name"])
    assert auth["spec"]["secretTargetRef"] == [
        {"parameter": "connection", "name": SECRET, "key": "KEDA_POSTGRESQL_CONNECTION"}
    ]


def test_the_scaler_connects_with_a_libpq_url_derived_from_the_database_url() -> None:
    for url, libpq in [
        ("postgresql+psycopg://u:p@db:5432/app", "postgresql://u:p@db:5432/app"),
        ("postgresql://u:p@db/app?sslmode=require", "postgresql://u:p@db/app?sslmode=require"),
        ("postgresql+psycopg2://u@db/app", "postgresql://u@db/app"),
    ]:
        values = {"secret": {"databaseUrl": url, "brokerUrl": "redis://r:6379/0"}}
        secret = render(values).one("Secret", SECRET)["stringData"]
        assert secret["PYSTATOR_DATABASE_URL"] == url
        assert secret["KEDA_POSTGRESQL_CONNECTION"] == libpq


def test_scale_to_zero_wakes_on_due_timers_and_stranded_actions() -> None:
    release = render(_ci("existing-secret"))
    scaled = release.one("ScaledObject", WORKER)["spec"]
    assert scaled["minReplicaCount"] == 0
    backlog, wake = scaled["triggers"]
    assert backlog["metadata"]["activationTargetQueryValue"] == "5"
    keda = chart_defaults()["worker"]["autoscaling"]["keda"]
    assert wake["metadata"]["query"] == keda["wakeQuery"]
    assert wake["metadata"]["activationTargetQueryValue"] == "0"
    auth = release.one("TriggerAuthentication", wake["authenticationRef"]["name"])
    assert auth["spec"]["secretTargetRef"][0]["name"] == "pystator-credentials"
    # with the workers at zero a standalone relay keeps nudging
    assert release.one("Deployment", f"{FULLNAME}-relay")


def test_prometheus_trigger_reads_the_api_backlog_gauge() -> None:
    release = render(_ci("ingress"))
    [trigger] = release.one("ScaledObject", WORKER)["spec"]["triggers"]
    assert trigger == {
        "type": "prometheus",
        "name": "due-backlog",
        "metadata": {
            "serverAddress": "http://prometheus-operated.monitoring.svc:9090",
            "query": f'max(pystator_backlog_due{{namespace="{NAMESPACE}",job="{API}"}})',
            "threshold": "200",
            "activationThreshold": "0",
        },
    }
    assert "TriggerAuthentication" not in release.kinds()


def test_hpa_mode_is_the_cpu_fallback() -> None:
    release = render(_ci("hpa"))
    assert "ScaledObject" not in release.kinds()
    hpa = release.one("HorizontalPodAutoscaler", WORKER)["spec"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (3, 20)
    assert hpa["metrics"][0]["resource"]["name"] == "cpu"
    assert hpa["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == 300
    assert "replicas" not in release.one("Deployment", WORKER)["spec"]


def test_autoscaling_off_runs_a_fixed_number_of_workers() -> None:
    release = render(_ci("autoscaling-off"))
    assert not {"ScaledObject", "HorizontalPodAutoscaler"} & release.kinds()
    assert not {"PodDisruptionBudget", "Job", "Service"} & release.kinds()
    worker = release.one("Deployment", WORKER)
    assert worker["spec"]["replicas"] == 4
    assert worker["spec"]["template"]["spec"]["containers"][0]["args"] == [
        "worker",
        "--concurrency",
        "8",
        "--pool",
        "threads",
        "--queue",
        "orders",
    ]


def test_disruption_budgets_protect_workers_and_api(default: Release) -> None:
    for name in (WORKER, API):
        assert default.one("PodDisruptionBudget", name)["spec"]["maxUnavailable"] == 1


# --- the API ---------------------------------------------------------------------------------


def test_api_serves_on_all_interfaces_with_auth_and_http_probes(default: Release) -> None:
    pod = default.one("Deployment", API)["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert container["args"] == ["api", "--host", "0.0.0.0", "--port", "8000", "--workers", "2"]
    assert container["startupProbe"]["httpGet"] == {"path": "/health", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/health", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "http"}
    env = {e["name"]: e for e in container["env"]}
    jwt = env["PYSTATOR_API_JWT_SECRET"]["valueFrom"]["secretKeyRef"]
    assert jwt == {"name": SECRET, "key": "PYSTATOR_API_JWT_SECRET"}
    service = default.one("Service", API)["spec"]
    assert service["ports"] == [
        {"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}
    ]


def test_only_the_api_receives_the_jwt_secret(default: Release) -> None:
    for _kind, workload, container, _pod in containers(default):
        names = {e["name"] for e in container["env"]}
        assert ("PYSTATOR_API_JWT_SECRET" in names) == (workload == f"Deployment/{API}")


def test_ingress_tls_and_service_monitors() -> None:
    release = render(_ci("ingress"))
    ingress = release.one("Ingress", API)
    assert ingress["spec"]["ingressClassName"] == "nginx"
    assert ingress["spec"]["tls"] == [
        {"secretName": "pystator-tls", "hosts": ["pystator.example.com"]}
    ]
    [rule] = ingress["spec"]["rules"]
    assert rule["host"] == "pystator.example.com"
    assert rule["http"]["paths"][0]["backend"]["service"] == {"name": API, "port": {"name": "http"}}
    monitors = {m["metadata"]["name"]: m for m in release.of_kind("ServiceMonitor")}
    assert set(monitors) == {API, WORKER}
    for monitor in monitors.values():
        assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
        assert monitor["spec"]["endpoints"][0]["path"] == "/metrics"


def test_no_api_objects_when_the_api_is_off() -> None:
    release = render(_ci("autoscaling-off"))
    assert not [o for o in release.objects if o.name.startswith(API)]


# --- secrets and credentials -----------------------------------------------------------------


def test_the_chart_has_no_default_credentials() -> None:
    secret = chart_defaults()["secret"]
    assert secret["existingSecret"] == secret["databaseUrl"] == secret["brokerUrl"] == ""
    with pytest.raises(helm.HelmRenderError, match=r"secret\.existingSecret .*secret\.databaseUrl"):
        render({})
    # no URL with a user and password anywhere in the chart's values (comments aside)
    userinfo = re.compile(r"://[^/@\s]+:[^/@\s]+@")
    assert not [s for s in _strings(chart_defaults()) if userinfo.search(s)]


def _strings(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [s for v in node.values() for s in _strings(v)]
    if isinstance(node, list):
        return [s for v in node for s in _strings(v)]
    return [node] if isinstance(node, str) else []


def test_the_generated_secret_holds_every_connection_setting(default: Release) -> None:
    secret = default.one("Secret", SECRET)
    data = secret["stringData"]
    assert set(data) == {
        "PYSTATOR_DATABASE_URL",
        "PYSTATOR_BROKER_URL",
        "PYSTATOR_API_JWT_SECRET",
        "KEDA_POSTGRESQL_CONNECTION",
    }
    assert re.fullmatch(r"[A-Za-z0-9]{48}", data["PYSTATOR_API_JWT_SECRET"])
    # a hook before the migrations Job, and not deleted after it (the pods read it)
    annotations = secret["metadata"]["annotations"]
    assert annotations["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert int(annotations["helm.sh/hook-weight"]) < 0
    assert "hook-succeeded" not in annotations["helm.sh/hook-delete-policy"]


def test_an_existing_secret_replaces_the_chart_secret() -> None:
    release = render(_ci("existing-secret"))
    assert "Secret" not in release.kinds()
    refs = []
    for _kind, _workload, container, pod in containers(release):
        assert pod["serviceAccountName"] == "pystator"
        refs += [e["valueFrom"]["secretKeyRef"] for e in container["env"] if "valueFrom" in e]
    assert refs and {r["name"] for r in refs} == {"pystator-credentials"}


def test_an_upgrade_renders_a_jwt_secret() -> None:
    """In a cluster ``lookup`` reads the current one back; offline a new one is generated."""
    upgraded = render(_ci("default"), upgrade=True).one("Secret", SECRET)["stringData"]
    assert len(upgraded["PYSTATOR_API_JWT_SECRET"]) == 48


# --- migrations ------------------------------------------------------------------------------


def test_migrations_run_as_a_pre_install_and_pre_upgrade_hook(default: Release) -> None:
    job = default.one("Job", f"{FULLNAME}-migrate")
    annotations = job["metadata"]["annotations"]
    assert annotations["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert job["spec"]["template"]["spec"]["containers"][0]["args"] == ["db", "upgrade"]
    # what the Job reads exists first: the Secret and ConfigMap are earlier hooks
    for kind, name in (("Secret", SECRET), ("ConfigMap", f"{FULLNAME}-machines")):
        weight = default.one(kind, name)["metadata"]["annotations"]["helm.sh/hook-weight"]
        assert int(weight) < int(annotations["helm.sh/hook-weight"])


# --- connection budget and the template checks -----------------------------------------------


def test_notes_show_the_connection_budget(default: Release) -> None:
    # workers: (10 max + 2 surge) x (8 + 6); api: (2 + 1 surge) x 2 processes x 5; migrate; keda
    assert "(max replicas + surge) x (concurrency 8 + 6) = 168" in default.notes
    assert "3 pods x 2 processes x 5 = 30" in default.notes
    assert re.search(r"total\s+200 ", default.notes)
    assert "kubectl -n jobs get scaledobject fleet-pystator-worker" in default.notes


def test_a_budget_over_max_connections_is_refused() -> None:
    values = dict(_ci("default"), database={"maxConnections": 199})
    with pytest.raises(helm.HelmRenderError, match="up to 200 database connections"):
        render(values)
    assert re.search(
        r"total\s+200 of database.maxConnections 200",
        render(dict(_ci("default"), database={"maxConnections": 200})).notes,
    )


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {"worker": {"autoscaling": {"minReplicas": 5, "maxReplicas": 3}}},
            r"maxReplicas \(3\) is below minReplicas \(5\)",
        ),
        (
            {"worker": {"rollingUpdate": {"maxSurge": 0, "maxUnavailable": 0}}},
            "cannot both be 0",
        ),
        (
            {
                "api": {"enabled": False},
                "worker": {
                    "autoscaling": {
                        "keda": {
                            "trigger": "prometheus",
                            "prometheus": {"serverAddress": "http://prom:9090"},
                        }
                    }
                },
            },
            "enable api",
        ),
    ],
    ids=["max-below-min", "no-rollout-room", "prometheus-without-api"],
)
def test_contradictory_values_are_refused(values: dict[str, Any], message: str) -> None:
    with pytest.raises(helm.HelmRenderError, match=message):
        render({**_ci("default"), **values})


# --- the commands the chart runs exist -------------------------------------------------------


def _argvs() -> set[tuple[str, ...]]:
    found: set[tuple[str, ...]] = set()
    for path in CI_FILES:
        for _kind, _workload, container, _pod in containers(render(load_values(path))):
            found.add(tuple(container["args"]))
            for probe in PROBES:
                command = container.get(probe, {}).get("exec", {}).get("command")
                if command:
                    assert command[0] == "pystator"
                    found.add(tuple(command[1:]))
    return found


def test_every_command_the_chart_runs_parses() -> None:
    argvs = _argvs()
    assert {a[0] for a in argvs} >= {"worker", "api", "health", "db", "relay"}
    check_commands(argvs)
