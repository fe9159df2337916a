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
  later.
"""

from __future__ import annotations

from typing import Annotated

from annotated_types import Ge, Le
from fastapi import Query, Request
from fastapi.exceptions import RequestValidationError
from pydantic import AfterValidator, Strict, StrictStr

from pystator.fleet import door

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


def _clean(value: str) -> str:
    """``value``, when it holds no control character and no lone surrogate."""
    bad = door.bad_character(value)
    if bad == "control":
        raise ValueError("control characters (NUL, C0, DEL, C1) are not allowed")
    if bad is not None:
        raise ValueError("not valid Unicode (a lone surrogate)")
    return value


#: A body's string that reaches a column (a filter, a name): the door's rule for names.
Text = Annotated[StrictStr, AfterValidator(_clean)]


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


__all__ = ["BIGINT_MAX", "BigInt", "Cursor", "MachineVersion", "StrictBigInt", "Text", "query_door"]
