"""The OpenAPI declares what the door accepts (no service needed): the names a request carries
in its path, query or body say their length and pattern, every other string parameter says it
refuses control characters, and each declared pattern agrees with the check it describes (a
value the schema allows passes the door; one the door refuses breaks the schema)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from pystator.api import create_app
from pystator.api.params import (
    CLEAN_PATTERN,
    DOOR_NAME_PATTERN,
    MACHINE_NAME_SCHEMA,
    SEGMENT_NAME_PATTERN,
    door_name_schema,
)
from pystator.config.settings import Settings
from pystator.fleet import door
from pystator.fsm_core.errors import InvalidEventError
from pystator.fsm_core.naming import is_valid_name

LIMITS = door.Limits()
ENTITY_SEGMENT = door_name_schema(LIMITS.max_entity_id_length, segment=True)
ENTITY_FILTER = door_name_schema(LIMITS.max_entity_id_length)

#: (method, path, location, parameter) -> the keywords its schema must declare.
PARAMETERS: dict[tuple[str, str, str, str], dict[str, object]] = {
    ("get", "/api/v1/machines/{name}", "path", "name"): MACHINE_NAME_SCHEMA,
    ("delete", "/api/v1/machines/{name}", "path", "name"): MACHINE_NAME_SCHEMA,
    ("post", "/api/v1/machines/{name}/replay", "path", "name"): MACHINE_NAME_SCHEMA,
    ("get", "/api/v1/entities/{entity_id}/state", "path", "entity_id"): ENTITY_SEGMENT,
    ("get", "/api/v1/entities/{entity_id}/state", "query", "machine_name"): MACHINE_NAME_SCHEMA,
    ("post", "/api/v1/entities/{entity_id}/events", "path", "entity_id"): ENTITY_SEGMENT,
    ("post", "/api/v1/entities/{entity_id}/apply-data", "path", "entity_id"): ENTITY_SEGMENT,
    ("post", "/api/v1/entities/{entity_id}/purge", "path", "entity_id"): ENTITY_SEGMENT,
    ("get", "/api/v1/entities/{machine}/{entity_id}", "path", "machine"): MACHINE_NAME_SCHEMA,
    ("get", "/api/v1/entities/{machine}/{entity_id}", "path", "entity_id"): ENTITY_SEGMENT,
    ("get", "/api/v1/observability/transitions", "query", "trigger"): ENTITY_FILTER,
    ("get", "/api/v1/observability/state-metrics", "query", "machine"): ENTITY_FILTER,
    ("get", "/api/v1/discovery/candidates/{machine_name}", "path", "machine_name"): (
        MACHINE_NAME_SCHEMA
    ),
    ("post", "/api/v1/discovery/shadow/{machine_name}", "path", "machine_name"): (
        MACHINE_NAME_SCHEMA
    ),
    ("get", "/api/v1/events", "query", "error"): {"pattern": CLEAN_PATTERN},
    ("get", "/api/v1/audit", "query", "principal"): {"pattern": CLEAN_PATTERN},
}

#: (component, field) -> the keywords its string schema must declare.
BODY_FIELDS: dict[tuple[str, str], dict[str, object]] = {
    ("EventIn", "machine"): MACHINE_NAME_SCHEMA,
    ("EventIn", "entity_id"): door_name_schema(LIMITS.max_entity_id_length),
    ("EventIn", "trigger"): door_name_schema(LIMITS.max_trigger_length),
    ("EventIn", "idempotency_key"): door_name_schema(LIMITS.max_idempotency_key_length),
    ("EntityEventIn", "machine_name"): MACHINE_NAME_SCHEMA,
    ("EntityEventIn", "trigger"): door_name_schema(LIMITS.max_trigger_length),
    ("EntityCreateIn", "machine_name"): MACHINE_NAME_SCHEMA,
    ("PurgeIn", "machine_name"): MACHINE_NAME_SCHEMA,
    ("ApplyDataIn", "machine_name"): MACHINE_NAME_SCHEMA,
    ("BulkCreateItemIn", "entity_id"): door_name_schema(LIMITS.max_entity_id_length),
    ("BulkEventsIn", "trigger"): door_name_schema(LIMITS.max_trigger_length),
    ("ScopeIn", "machine_name"): MACHINE_NAME_SCHEMA,
}


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return create_app(Settings(database_url="sqlite:///:memory:")).openapi()


def _string_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """The string branch of ``schema`` (keywords beside an ``anyOf`` apply to it too)."""
    for branch in schema.get("anyOf", []):
        if branch.get("type") == "string":
            return {**{k: v for k, v in schema.items() if k != "anyOf"}, **branch}
    return schema


def _missing(declared: dict[str, Any], wanted: dict[str, object]) -> dict[str, object]:
    return {k: v for k, v in wanted.items() if declared.get(k) != v}


def test_the_constrained_parameters_are_declared(spec: dict[str, Any]) -> None:
    failures = []
    for (method, path, location, name), wanted in PARAMETERS.items():
        parameters = spec["paths"][path][method].get("parameters", [])
        found = [p for p in parameters if p["in"] == location and p["name"] == name]
        if not found:
            failures.append(f"{method} {path}: no {location} parameter {name}")
            continue
        missing = _missing(_string_schema(found[0]["schema"]), wanted)
        if missing:
            failures.append(f"{method} {path} {location}.{name}: lacks {missing}")
    assert failures == []


def test_the_constrained_body_fields_are_declared(spec: dict[str, Any]) -> None:
    components = spec["components"]["schemas"]
    failures = []
    for (component, name), wanted in BODY_FIELDS.items():
        declared = _string_schema(components[component]["properties"][name])
        missing = _missing(declared, wanted)
        if missing:
            failures.append(f"{component}.{name}: lacks {missing}")
    assert failures == []


def test_every_string_parameter_declares_the_query_door(spec: dict[str, Any]) -> None:
    failures = []
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            for parameter in operation.get("parameters", []):
                if parameter["in"] not in ("query", "path"):
                    continue
                schema = _string_schema(parameter["schema"])
                if schema.get("type") == "string" and not {"pattern", "enum", "format"} & set(
                    schema
                ):
                    failures.append(f"{method} {path} {parameter['in']}.{parameter['name']}")
    assert failures == []


#: Values around the door's rules: control characters, spaces, slashes, lengths, Unicode.
SAMPLES = [
    "order-1",
    "a",
    " x ",
    "   ",
    "",
    "\t",
    "a\x00b",
    "a\nb",
    "ab\n",
    "a\x7f",
    "a\x85",
    "caf\u00e9",
    "\u00a0",
    "a/b",
    "/",
    "order.created",
    "_x",
    "-x",
    ".x",
    "x y",
    "Ω" * 255,
    "Ω" * 256,
    "x" * 200,
    "x" * 201,
]


def _door_accepts(value: str, limit: int) -> bool:
    try:
        door.check_name("name", value, limit=limit)
    except InvalidEventError:
        return False
    return True


def _schema_accepts(value: str, schema: dict[str, Any]) -> bool:
    return (
        int(schema["minLength"]) <= len(value) <= int(schema["maxLength"])
        and re.search(str(schema["pattern"]), value) is not None
        and not value.endswith("\n")  # JSON Schema's "$" is ECMA 262's: no newline before it
    )


@pytest.mark.parametrize("value", SAMPLES)
def test_the_declared_door_name_is_the_doors_rule(value: str) -> None:
    limit = LIMITS.max_entity_id_length
    assert _schema_accepts(value, door_name_schema(limit)) == _door_accepts(value, limit)
    in_a_segment = _door_accepts(value, limit) and "/" not in value
    assert _schema_accepts(value, door_name_schema(limit, segment=True)) == in_a_segment


@pytest.mark.parametrize("value", SAMPLES)
def test_the_declared_machine_name_is_the_naming_rule(value: str) -> None:
    # the naming rule's "$" lets one trailing newline through; the declared pattern does not
    expected = is_valid_name(value) and not value.endswith("\n")
    assert _schema_accepts(value, MACHINE_NAME_SCHEMA) == expected


def test_the_patterns_refuse_every_control_character() -> None:
    controls = [chr(c) for c in (*range(0x20), *range(0x7F, 0xA0))]
    for pattern in (CLEAN_PATTERN, DOOR_NAME_PATTERN, SEGMENT_NAME_PATTERN):
        assert [c for c in controls if re.search(pattern, f"a{c}b")] == []
