"""The door of the HTTP API for what is not a body: bounded integers and clean query strings.

- :data:`BigInt` (query and path parameters) and :data:`StrictBigInt` (JSON bodies) are the one
  integer type of ids, cursors and counts: ``0 <= n <= 2**63 - 1``, what a ``BIGINT`` column
  holds, so an out-of-range number is a 422 naming the parameter, never a database error.
  :data:`Cursor` is an optional :data:`BigInt` query parameter (``next_cursor`` of a page).
- :data:`Text` is a string of a body that is compared with or stored in a column (a filter, a
  key's name): no control character and no lone surrogate, 422 otherwise.
- :func:`query_door` is an app-wide dependency: a control character (NUL, C0, DEL, C1) in any
  query parameter or path segment is a 422 naming the parameter, before any route runs, as the
  event door refuses one in a body's names. It covers every route, including the ones added
  later (and :mod:`pystator.api.openapi` declares it on every string parameter).
- The name types (:data:`EntityId`, :data:`TriggerName`, :data:`IdempotencyKey`,
  :data:`MachineName`, their path and query forms) declare in the OpenAPI what the door and the
  naming rules accept, so that a client (or a fuzzer) can tell a valid value from the schema.
  They declare only: the door still checks, and its 422 names the rule.
"""

from __future__ import annotations

from typing import Annotated

from annotated_types import Ge, Le
from fastapi import Path, Query, Request
from fastapi.exceptions import RequestValidationError
from pydantic import AfterValidator, Field, Strict, StrictStr

from pystator.fleet import door
from pystator.fsm_core.limits import MAX_NAME_LENGTH
from pystator.fsm_core.naming import NAME_PATTERN

#: The largest value of a ``BIGINT`` column (PostgreSQL's and SQLite's 64-bit integer).
BIGINT_MAX = 2**63 - 1

#: An id, cursor or count in a query string or a path: ``0 <= n <= 2**63 - 1``.
BigInt = Annotated[int, Ge(0), Le(BIGINT_MAX)]
#: The same in a JSON body (a JSON integer only: ``"1"`` and ``1.0`` are refused).
StrictBigInt = Annotated[int, Strict(), Ge(0), Le(BIGINT_MAX)]
#: The largest value of an ``INTEGER`` column (machine versions, discovery thresholds).
INT_MAX = 2**31 - 1
#: A machine version (an ``INTEGER`` column: ``1 <= n <= 2**31 - 1``).
MachineVersion = Annotated[int, Ge(1), Le(INT_MAX)]
#: ``next_cursor`` of the previous page, passed back as a query parameter.
Cursor = Annotated[BigInt | None, Query(description="next_cursor of the previous page")]


#: The control characters the door refuses (Unicode category Cc), as a JSON Schema class.
_CONTROL = r"\x00-\x1f\x7f-\x9f"
#: A string with no control character (what :func:`query_door` and :data:`Text` accept).
CLEAN_PATTERN = rf"^[^{_CONTROL}]*$"
#: A name the door accepts (``door.check_name``): no control character, not only spaces.
DOOR_NAME_PATTERN = rf"^[^{_CONTROL}]*[^\s{_CONTROL}][^{_CONTROL}]*$"
#: The same in one path segment: a ``/`` would end the segment, so no route would match.
SEGMENT_NAME_PATTERN = rf"^[^/{_CONTROL}]*[^/\s{_CONTROL}][^/{_CONTROL}]*$"
_LIMITS = door.Limits()


def door_name_schema(limit: int, *, segment: bool = False) -> dict[str, object]:
    """The JSON Schema keywords of a name the door accepts, at most ``limit`` characters."""
    pattern = SEGMENT_NAME_PATTERN if segment else DOOR_NAME_PATTERN
    return {"minLength": 1, "maxLength": limit, "pattern": pattern}


#: The JSON Schema keywords of a machine name (the naming rules: ``order_management``).
MACHINE_NAME_SCHEMA: dict[str, object] = {
    "minLength": 1,
    "maxLength": MAX_NAME_LENGTH,
    "pattern": NAME_PATTERN,
}
_ENTITY_ID = door_name_schema(_LIMITS.max_entity_id_length)
_TRIGGER = door_name_schema(_LIMITS.max_trigger_length)

#: An entity id in a body (the door's rule; declared, the door checks).
EntityId = Annotated[StrictStr, Field(json_schema_extra=_ENTITY_ID)]
#: A trigger in a body.
TriggerName = Annotated[StrictStr, Field(json_schema_extra=_TRIGGER)]
#: An idempotency key in a body.
IdempotencyKey = Annotated[
    StrictStr, Field(json_schema_extra=door_name_schema(_LIMITS.max_idempotency_key_length))
]
#: A machine's name in a body: only a machine that exists is accepted, and every one follows
#: the naming rules.
MachineName = Annotated[StrictStr, Field(json_schema_extra=MACHINE_NAME_SCHEMA)]
#: An entity id as a path segment.
EntityIdPath = Annotated[
    str,
    Path(json_schema_extra=door_name_schema(_LIMITS.max_entity_id_length, segment=True)),
]
#: A machine's name as a path segment.
MachinePath = Annotated[str, Path(json_schema_extra=MACHINE_NAME_SCHEMA)]
#: A filter on a name (machine, entity id, trigger) that goes through the door: a name or
#: nothing.
NameFilter = Annotated[Annotated[str, Field(json_schema_extra=_ENTITY_ID)] | None, Query()]


def _clean(value: str) -> str:
    """``value``, when it holds no control character and no lone surrogate."""
    bad = door.bad_character(value)
    if bad == "control":
        raise ValueError("control characters (NUL, C0, DEL, C1) are not allowed")
    if bad is not None:
        raise ValueError("not valid Unicode (a lone surrogate)")
    return value


#: A body's string that reaches a column (a filter, a name): the door's rule for names.
Text = Annotated[
    StrictStr, AfterValidator(_clean), Field(json_schema_extra={"pattern": CLEAN_PATTERN})
]


def _bad(location: str, name: str, value: str) -> dict[str, object] | None:
    """The validation error of one parameter, if it holds a control character."""
    if door.bad_character(value) is None:
        return None
    return {
        "loc": (location, name),
        "msg": "control characters (NUL, C0, DEL, C1) are not allowed",
        "type": "control_character",
        "input": value,
    }


async def query_door(request: Request) -> None:
    """422 when a query parameter or a path parameter holds a control character."""
    found = [_bad("query", k, v) for k, v in request.query_params.multi_items()]
    found += [_bad("path", k, str(v)) for k, v in request.path_params.items()]
    errors = [error for error in found if error is not None]
    if errors:
        raise RequestValidationError(errors)


__all__ = [
    "BIGINT_MAX",
    "CLEAN_PATTERN",
    "DOOR_NAME_PATTERN",
    "MACHINE_NAME_SCHEMA",
    "SEGMENT_NAME_PATTERN",
    "BigInt",
    "Cursor",
    "EntityId",
    "EntityIdPath",
    "IdempotencyKey",
    "MachineName",
    "MachinePath",
    "MachineVersion",
    "NameFilter",
    "StrictBigInt",
    "Text",
    "TriggerName",
    "door_name_schema",
    "query_door",
]
