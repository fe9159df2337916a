"""Every route's error answers declared once, in the OpenAPI, from what the route is.

:func:`install` wraps the app's ``openapi()``: after FastAPI has built the document, each
operation gets the ``application/problem+json`` answers it can give (the :class:`Problem`
shape), decided from its dependencies and parameters, so a route added later is covered
without declaring anything:

- 401 and 403 when it authenticates the caller (``current_principal``, under every role);
- 400 (the body is not JSON or YAML), 413 (larger than ``PYSTATOR_API_MAX_BODY_BYTES``) and
  415 (another media type) when it takes a body;
- 404 when it names something (a path or query parameter, or a body);
- 409 on POST, PUT, PATCH and DELETE;
- 422 on every route (the query door and request validation);
- 503 when it uses the database (``get_services``): the store is unavailable.

Every string query and path parameter also declares what the app-wide query door accepts (no
control character: :data:`~pystator.api.params.CLEAN_PATTERN`), unless it declares a stricter
pattern of its own (the name types of :mod:`pystator.api.params`).

An answer a route declares itself keeps its description and its own content (``/ready``'s
503 is its JSON report); FastAPI's ``HTTPValidationError`` 422 and any error declared with the
:class:`Problem` model under ``application/json`` become ``application/problem+json``, the
media type those answers really have.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts
from starlette.routing import BaseRoute

from pystator.api.deps import current_principal, get_services
from pystator.api.params import BIGINT_MAX, CLEAN_PATTERN
from pystator.api.problems import MEDIA_TYPE
from pystator.api.schemas.common import PROBLEM_DESCRIPTIONS, Problem

MUTATIONS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_PROBLEM_REF = "#/components/schemas/Problem"
#: FastAPI's own 422 shapes, replaced by the problem (dropped when nothing refers to them).
_FASTAPI_ERRORS = ("HTTPValidationError", "ValidationError")


def _calls(dependant: Dependant) -> list[Callable[..., Any]]:
    found: list[Callable[..., Any]] = []
    for dependency in dependant.dependencies:
        if dependency.call is not None:
            found.append(dependency.call)
        found += _calls(dependency)
    return found


def _names_something(dependant: Dependant) -> bool:
    """Whether ``dependant`` or a dependency of it takes a path or query parameter."""
    if dependant.path_params or dependant.query_params:
        return True
    return any(_names_something(d) for d in dependant.dependencies)


def _has_body(route: Any) -> bool:
    return route.body_field is not None or "requestBody" in (route.openapi_extra or {})


def problem_statuses(route: Any, method: str) -> set[int]:
    """The error statuses ``route`` (an :class:`~fastapi.routing.APIRoute` as the app serves
    it: its dependencies include the app's and its router's) can answer ``method`` with."""
    calls = _calls(route.dependant)
    statuses = {422}
    if current_principal in calls:
        statuses |= {401, 403}
    if get_services in calls:
        statuses.add(503)
    body = _has_body(route)
    if body:
        statuses |= {400, 413, 415}
    if body or _names_something(route.dependant):
        statuses.add(404)
    if method.upper() in MUTATIONS:
        statuses.add(409)
    return statuses


def _is_error_shape(media: dict[str, Any]) -> bool:
    ref = str(media.get("schema", {}).get("$ref", ""))
    return ref == _PROBLEM_REF or ref.endswith("/HTTPValidationError")


def _declare(responses: dict[str, Any], status: int) -> None:
    entry = responses.setdefault(str(status), {})
    entry.setdefault("description", PROBLEM_DESCRIPTIONS.get(status, "an error (a problem)"))
    content = entry.setdefault("content", {})
    json_media = content.get("application/json")
    if json_media is not None and _is_error_shape(json_media):
        del content["application/json"]
    if not content:
        content[MEDIA_TYPE] = {"schema": {"$ref": _PROBLEM_REF}}


def _exact_bounds(node: Any) -> None:
    """Integer bounds as integers: FastAPI's OpenAPI models hold ``minimum``/``maximum`` as
    floats, and ``2**63 - 1`` as a float is ``2**63``, one past what a BIGINT holds."""
    if isinstance(node, list):
        for item in node:
            _exact_bounds(item)
    elif isinstance(node, dict):
        if node.get("type") == "integer":
            for key in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
                value = node.get(key)
                if isinstance(value, float) and value.is_integer():
                    node[key] = max(-BIGINT_MAX - 1, min(BIGINT_MAX, int(value)))
        for value in node.values():
            _exact_bounds(value)


#: Where :func:`~pystator.api.params.query_door` looks.
_DOOR_LOCATIONS = frozenset({"query", "path"})


def _clean_strings(node: dict[str, Any]) -> None:
    """Add the query door's pattern to a string schema (or the string branches of a union)
    that has no pattern, enum or format of its own."""
    for branch in node.get("anyOf", []):
        _clean_strings(branch)
    if node.get("type") == "string" and not {"pattern", "enum", "const", "format"} & set(node):
        node["pattern"] = CLEAN_PATTERN


def declare_query_door(schema: dict[str, Any]) -> None:
    """Declare on every string query and path parameter that control characters are refused
    (in place)."""
    for path_item in schema.get("paths", {}).values():
        for operation in path_item.values():
            if not isinstance(operation, dict):
                continue
            for parameter in operation.get("parameters", []):
                if parameter.get("in") in _DOOR_LOCATIONS and "schema" in parameter:
                    _clean_strings(parameter["schema"])


def declare_problems(schema: dict[str, Any], routes: Iterable[BaseRoute]) -> dict[str, Any]:
    """Add the problem answers of ``routes`` to the OpenAPI document ``schema`` (in place)."""
    _exact_bounds(schema.get("components", {}))
    _exact_bounds(schema.get("paths", {}))
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.setdefault("Problem", Problem.model_json_schema())
    for route in iter_route_contexts(list(routes)):
        if not isinstance(route.original_route, APIRoute) or not route.include_in_schema:
            continue
        path_item = schema.get("paths", {}).get(route.path_format, {})
        for method in sorted(route.methods or ()):
            operation = path_item.get(method.lower())
            if operation is None:
                continue
            responses = operation.setdefault("responses", {})
            declared = {int(s) for s in responses if s.isdigit() and int(s) >= 400}
            for status in sorted(declared | problem_statuses(route, method)):
                _declare(responses, status)
    text = json.dumps(schema.get("paths", {}))
    for name in _FASTAPI_ERRORS:
        if f'/{name}"' not in text and f'/{name}"' not in json.dumps(components):
            components.pop(name, None)
    return schema


def install(app: FastAPI) -> None:
    """Make ``app.openapi()`` declare every route's problem answers."""
    build = app.openapi  # FastAPI's: rebuilt when the routes change, else cached
    done: list[int] = []

    def openapi() -> dict[str, Any]:
        schema = build()
        if done != [id(schema)]:
            done[:] = [id(schema)]
            declare_problems(schema, app.routes)
            declare_query_door(schema)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


__all__ = ["MUTATIONS", "declare_problems", "declare_query_door", "install", "problem_statuses"]
