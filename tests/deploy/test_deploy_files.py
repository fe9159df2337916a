"""docker-compose.yml, .env.example and the Dockerfile (no Docker engine needed).

The compose file is validated against the Compose Specification's JSON schema (vendored in
``tests/fixtures/schemas``), before and after interpolation with the variables of .env.example.
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.support.deploy_commands import check_commands
from tests.support.helm_chart import SCHEMAS, chart_defaults

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
COMPOSE_SCHEMA = json.loads((SCHEMAS / "compose-spec.json").read_text())
DOCKERFILE = (ROOT / "Dockerfile").read_text()
#: ``${NAME}``, ``${NAME:-default}``, ``${NAME-default}``, ``${NAME:?error}``, ``${NAME?error}``
VARIABLE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")
LONG_RUNNING = ("postgres", "redis", "worker", "relay", "api")


def _env_example() -> dict[str, str]:
    values: dict[str, str] = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    return values


class MissingVariable(Exception):
    """A ``${NAME:?message}`` variable is unset or empty (compose refuses to start)."""


def _interpolate(node: Any, env: dict[str, str]) -> Any:
    """Compose's variable interpolation, for the forms the compose file uses."""
    if isinstance(node, dict):
        return {key: _interpolate(value, env) for key, value in node.items()}
    if isinstance(node, list):
        return [_interpolate(item, env) for item in node]
    if not isinstance(node, str):
        return node

    def one(match: re.Match[str]) -> str:
        name, op, arg = match["name"], match["op"] or "", match["arg"] or ""
        value = env.get(name)
        unset = value is None or (op.startswith(":") and value == "")
        if op.endswith("?") and unset:
            raise MissingVariable(f"{name}: {arg}")
        if op.endswith("-") and unset:
            return arg
        return value or ""

    return VARIABLE.sub(one, node)


def _variables() -> dict[str, str]:
    """Every variable the compose file reads, with its operator (``:?``, ``:-`` or none)."""
    text = (ROOT / "docker-compose.yml").read_text()
    return {m["name"]: m["op"] or "" for m in VARIABLE.finditer(text)}


def _filled_env() -> dict[str, str]:
    """.env.example with each empty value filled in, as the file tells the user to do."""
    return {name: value or f"generated-{name.lower()}" for name, value in _env_example().items()}


# --- compose ---------------------------------------------------------------------------------


def test_compose_file_matches_the_compose_specification() -> None:
    validator = jsonschema.Draft7Validator(COMPOSE_SCHEMA)
    for document in (COMPOSE, _interpolate(COMPOSE, _filled_env())):
        errors = [f"{e.json_path}: {e.message}" for e in validator.iter_errors(document)]
        assert errors == []


def test_the_schema_catches_a_wrong_compose_file() -> None:
    """The vendored schema is strict enough to matter (so the test above can fail)."""
    validator = jsonschema.Draft7Validator(COMPOSE_SCHEMA)
    broken = json.loads(json.dumps(COMPOSE))
    broken["services"]["worker"]["healthcheck"]["intervall"] = "30s"
    broken["services"]["api"]["depends_on"]["migrate"]["condition"] = "service_done"
    assert len(list(validator.iter_errors(broken))) == 2


def test_compose_declares_the_fleet_and_the_api() -> None:
    services = COMPOSE["services"]
    assert set(services) == {"postgres", "redis", "migrate", "worker", "relay", "api"}
    assert services["migrate"]["command"] == ["db", "upgrade"]
    for name in ("worker", "relay", "api"):
        condition = services[name]["depends_on"]["migrate"]["condition"]
        assert condition == "service_completed_successfully", name
    assert services["api"]["command"][:3] == ["api", "--host", "0.0.0.0"]
    # published on the loopback interface only
    assert services["api"]["ports"] == ["127.0.0.1:${PYSTATOR_API_PORT:-8000}:8000"]


def test_every_long_running_service_has_a_healthcheck() -> None:
    services = COMPOSE["services"]
    for name in LONG_RUNNING:
        check = services[name].get("healthcheck", {})
        assert check.get("test") and not check.get("disable"), name
    # the one-shot migration says so explicitly; its exit status is what others wait for
    assert services["migrate"]["healthcheck"] == {"disable": True}
    assert services["worker"]["healthcheck"]["test"][1:] == [
        "pystator",
        "health",
        "--liveness",
        "--stall-seconds",
        "60",
    ]


def test_compose_gives_workers_time_to_drain() -> None:
    from pystator.commands.worker import DRAIN_TIMEOUT_SECONDS

    grace = COMPOSE["services"]["worker"]["stop_grace_period"]
    assert grace.endswith("s") and int(grace[:-1]) > DRAIN_TIMEOUT_SECONDS
    assert COMPOSE["services"]["worker"]["stop_signal"] == "SIGTERM"


def test_pystator_services_run_locked_down() -> None:
    for name in ("migrate", "worker", "relay", "api"):
        service = COMPOSE["services"][name]
        assert service["read_only"] is True, name
        assert service["cap_drop"] == ["ALL"], name
        assert "no-new-privileges:true" in service["security_opt"], name
        assert service["tmpfs"] == ["/tmp"], name


def test_compose_has_no_working_default_credentials() -> None:
    required = {name for name, op in _variables().items() if op in (":?", "?")}
    assert {"POSTGRES_PASSWORD", "PYSTATOR_API_JWT_SECRET"} <= required
    secret_key = re.compile(r"PASSWORD|SECRET|TOKEN", re.IGNORECASE)
    userinfo = re.compile(r"://[^:/@\s]+:(?P<password>[^@\s]+)@")
    for name, service in COMPOSE["services"].items():
        for key, value in (service.get("environment") or {}).items():
            if secret_key.search(key):
                assert VARIABLE.fullmatch(value) and VARIABLE.fullmatch(value)["op"] == ":?", (
                    f"{name}.{key}"
                )
            match = userinfo.search(str(value))
            if match:
                assert VARIABLE.fullmatch(match["password"]), f"{name}.{key}: literal password"
    # without a .env, compose refuses to start rather than use some default
    with pytest.raises(MissingVariable, match="POSTGRES_PASSWORD"):
        _interpolate(COMPOSE, {})


def test_env_example_lists_every_variable_and_sets_no_secret() -> None:
    example = _env_example()
    assert set(_variables()) <= set(example)
    for name, op in _variables().items():
        if op == ":?":
            assert example[name] == "", f"{name} has a value in .env.example"
    # as shipped, the example does not start the stack
    with pytest.raises(MissingVariable):
        _interpolate(COMPOSE, example)
    filled = _interpolate(COMPOSE, _filled_env())
    url = filled["services"]["worker"]["environment"]["PYSTATOR_DATABASE_URL"]
    assert url == (
        "postgresql+psycopg://pystator:generated-postgres_password@postgres:5432/pystator"
    )
    assert filled["services"]["worker"]["deploy"]["replicas"] == "3"


def test_only_the_api_gets_the_jwt_secret() -> None:
    for name, service in COMPOSE["services"].items():
        has_jwt = "PYSTATOR_API_JWT_SECRET" in (service.get("environment") or {})
        assert has_jwt == (name == "api"), name


def test_compose_commands_parse() -> None:
    argvs: set[tuple[str, ...]] = set()
    for name in ("migrate", "worker", "relay", "api"):
        service = COMPOSE["services"][name]
        argvs.add(tuple(service["command"]))
        test = service.get("healthcheck", {}).get("test", [])
        if test[1:2] == ["pystator"]:
            argvs.add(tuple(test[2:]))
    check_commands(argvs)


# --- Dockerfile ------------------------------------------------------------------------------


def _instructions() -> list[tuple[str, str]]:
    joined = DOCKERFILE.replace("\\\n", " ")
    lines = [line.strip() for line in joined.splitlines()]
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1])
        for line in lines
        if line and not line.startswith("#")
    ]


def test_dockerfile_base_image_is_pinned_to_a_patch_release() -> None:
    args = dict(v.split("=", 1) for k, v in _instructions() if k == "ARG" and "=" in v)
    image = args["PYTHON_IMAGE"]
    match = re.fullmatch(r"python:(\d+)\.(\d+)\.(\d+)-slim-[a-z]+", image)
    assert match, image
    froms = [v.split()[0] for k, v in _instructions() if k == "FROM"]
    assert froms and set(froms) == {"${PYTHON_IMAGE}"}
    # the image's Python satisfies the package's requires-python
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    minimum = re.fullmatch(r">=(\d+)\.(\d+)", project["requires-python"])
    assert minimum
    assert (int(match[1]), int(match[2])) >= (int(minimum[1]), int(minimum[2]))


def test_dockerfile_runs_as_the_chart_user_with_a_healthcheck() -> None:
    instructions = _instructions()
    last_from = max(i for i, (k, _) in enumerate(instructions) if k == "FROM")
    users = [v for k, v in instructions[last_from:] if k == "USER"]
    assert users, "the runtime stage sets no USER"
    uid, _, gid = users[-1].partition(":")
    security = chart_defaults()["podSecurityContext"]
    assert (int(uid), int(gid)) == (security["runAsUser"], security["runAsGroup"]) != (0, 0)
    [healthcheck] = [v for k, v in instructions if k == "HEALTHCHECK"]
    options, _, command = healthcheck.partition("CMD ")
    assert json.loads(command) == ["pystator", "health"]
    assert "--start-period=" in options and "--timeout=" in options
    assert dict(instructions)["ENTRYPOINT"] == '["pystator"]'
    assert 'pip install ".[all]"' in DOCKERFILE
    exposed = {int(p) for k, v in instructions if k == "EXPOSE" for p in v.split()}
    values = chart_defaults()
    assert {values["api"]["port"], values["worker"]["metrics"]["port"]} <= exposed


def test_dockerfile_commands_parse() -> None:
    instructions = dict(_instructions())
    check_commands([tuple(json.loads(instructions["CMD"])), ("health",)])
