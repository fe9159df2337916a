"""The OpenAPI document as a contract (no service needed): every route declares the problem
answers it can give as ``application/problem+json``, every integer a request can carry is
bounded to what a BIGINT column holds, and a route added later is covered without declaring
anything."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

import pytest
from fastapi import APIRouter, Query

from pystator.api import create_app
from pystator.api.deps import ServicesDep, Viewer
from pystator.api.params import BIGINT_MAX
from pystator.api.problems import MEDIA_TYPE
from pystator.api.schemas.common import Strict
from pystator.config.settings import Settings

METHODS = ("get", "post", "put", "patch", "delete")
#: Error answers with a content of their own (not a problem).
OWN_ERRORS = {("get", "/ready", "503")}


def _spec(*routers: APIRouter) -> dict[str, Any]:
    app = create_app(Settings(database_url="sqlite:///:memory:"))
    for router in routers:
        app.include_router(router)
    return app.openapi()


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return _spec()


def _operations(spec: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in spec["paths"].items():
        for method in METHODS:
            if method in item:
                yield method, path, item[method]


def test_every_error_answer_is_a_declared_problem(spec: dict[str, Any]) -> None:
    failures = []
    for method, path, operation in _operations(spec):
        responses = operation["responses"]
        if "422" not in responses:
            failures.append(f"{method} {path}: no 422")
        if "requestBody" in operation and not {"400", "413"} <= set(responses):
            failures.append(f"{method} {path}: a body but no 400/413")
        for status, response in responses.items():
            if int(status) < 400 or (method, path, status) in OWN_ERRORS:
                continue
            if set(response.get("content", {})) != {MEDIA_TYPE}:
                failures.append(f"{method} {path} {status}: {sorted(response.get('content', {}))}")
    assert failures == []
    assert "HTTPValidationError" not in spec["components"]["schemas"]


def test_authenticated_routes_declare_401_and_403(spec: dict[str, Any]) -> None:
    public = {("get", "/"), ("get", "/health"), ("get", "/ready"), ("get", "/metrics")}
    public.add(("get", "/api/v1/catalog/builtins"))
    for method, path, operation in _operations(spec):
        if (method, path) in public:
            assert "401" not in operation["responses"], f"{method} {path}"
        else:
            assert {"401", "403", "503"} <= set(operation["responses"]), f"{method} {path}"


def test_live_streams_declare_text_event_stream(spec: dict[str, Any]) -> None:
    """A route under ``…/stream`` answers ``text/event-stream``: its OpenAPI must say so
    (``response_class=EventSourceResponse`` or ``responses={200: {"content": …}}``)."""
    for _method, path, operation in _operations(spec):
        if path.endswith("/stream"):
            assert "text/event-stream" in operation["responses"]["200"]["content"], path


def _integers(schema: Any, spec: dict[str, Any], where: str, seen: set[str]) -> Iterator[str]:
    """Every unbounded integer of ``schema`` (refs resolved), by where it is."""
    if isinstance(schema, list):
        for item in schema:
            yield from _integers(item, spec, where, seen)
        return
    if not isinstance(schema, dict):
        return
    ref = schema.get("$ref")
    if isinstance(ref, str):
        if ref in seen:
            return
        name = ref.rsplit("/", 1)[-1]
        yield from _integers(spec["components"]["schemas"][name], spec, name, seen | {ref})
        return
    if schema.get("type") == "integer":
        low, high = schema.get("minimum"), schema.get("maximum")
        if low is None or high is None or low < -BIGINT_MAX - 1 or high > BIGINT_MAX:
            yield f"{where}: [{low}, {high}]"
    for key in ("properties", "patternProperties"):
        for name, sub in schema.get(key, {}).items():
            yield from _integers(sub, spec, f"{where}.{name}", seen)
    for key in ("items", "additionalProperties", "anyOf", "oneOf", "allOf", "not"):
        if key in schema:
            yield from _integers(schema[key], spec, where, seen)


def test_every_integer_a_request_carries_is_bounded(spec: dict[str, Any]) -> None:
    found = []
    for method, path, operation in _operations(spec):
        for parameter in operation.get("parameters", []):
            where = f"{method} {path} {parameter['in']}.{parameter['name']}"
            found += _integers(parameter.get("schema", {}), spec, where, set())
        for media, content in operation.get("requestBody", {}).get("content", {}).items():
            found += _integers(content.get("schema", {}), spec, f"{method} {path} {media}", set())
    assert found == []


class _NewIn(Strict):
    note: str


def test_a_route_added_later_is_covered_without_declaring_anything() -> None:
    router = APIRouter(prefix="/api/v1/later")

    @router.post("/{thing}")
    def later(
        thing: str,
        body: _NewIn,
        services: ServicesDep,
        _viewer: Viewer,
        n: Annotated[int, Query(ge=0, le=10)] = 0,
    ) -> dict[str, str]:
        return {}

    @router.get("/plain")
    def plain() -> dict[str, str]:
        return {}

    spec = _spec(router)
    posted = spec["paths"]["/api/v1/later/{thing}"]["post"]["responses"]
    assert set(posted) == {"200", "400", "401", "403", "404", "409", "413", "415", "422", "503"}
    assert all(set(posted[s]["content"]) == {MEDIA_TYPE} for s in posted if s != "200")
    assert set(spec["paths"]["/api/v1/later/plain"]["get"]["responses"]) == {"200", "422"}
