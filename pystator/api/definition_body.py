"""A machine definition in a request body: JSON ``{"config": {…}}``, or the YAML file itself.

The routes that take a definition (validate, publish) accept either:

* ``Content-Type: application/json`` (the default): ``{"config": {…}}``;
* ``Content-Type: application/yaml`` (or ``application/x-yaml``, ``text/yaml``): the definition
  file as it is, read by the project's one YAML reader
  (:func:`~pystator.fsm_core.yaml_loader.parse_yaml`: its size limits and alias budget apply).

Either way the document is then checked against the definition limits
(:mod:`pystator.fsm_core.limits`) before anything copies it.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.exceptions import HTTPException, RequestValidationError
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from pystator.api.schemas.machines import ConfigIn
from pystator.fsm_core.errors import ConfigurationError
from pystator.fsm_core.yaml_loader import parse_yaml

#: Media types read as a YAML definition.
YAML_MEDIA_TYPES = ("application/yaml", "application/x-yaml", "text/yaml")
#: ``openapi_extra`` of a route taking a definition: the two bodies it accepts.
DEFINITION_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": ConfigIn.model_json_schema()},
            "application/yaml": {
                "schema": {
                    "type": "string",
                    "description": "the definition file itself (YAML); aliases are counted "
                    "expanded against the definition budget",
                }
            },
        },
    },
    "responses": {
        "415": {
            "description": "the body is neither application/json nor application/yaml",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
    },
}


async def definition(request: Request) -> dict[str, Any]:
    """The definition the request carries (not yet validated: the route does that).

    Any other media type is refused (415) unread: a page on another site can send
    ``text/plain`` or a form without asking the browser's CORS permission, never JSON or YAML.
    """
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media_type in YAML_MEDIA_TYPES:
        raw = await request.body()
        return await run_in_threadpool(_yaml, raw)  # up to a megabyte of YAML: off the loop
    if media_type and media_type != "application/json" and not media_type.endswith("+json"):
        raise HTTPException(
            415,
            f"Content-Type {media_type!r} is not accepted here: send application/json "
            '({"config": {…}}) or application/yaml (the definition file)',
        )
    raw = await request.body()
    try:
        return ConfigIn.model_validate_json(raw or b"null").config
    except ValidationError as exc:
        errors = [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
        raise RequestValidationError(errors) from None


def _yaml(raw: bytes) -> dict[str, Any]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigurationError(
            f"the YAML body is not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start})"
        ) from None
    document = parse_yaml(text, source="<request>")
    if not isinstance(document, dict):
        raise ConfigurationError("the YAML body must be a mapping (a machine definition)")
    return document


Definition = Annotated[dict[str, Any], Depends(definition)]


__all__ = ["DEFINITION_BODY", "YAML_MEDIA_TYPES", "Definition", "definition"]
