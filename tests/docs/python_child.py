"""The interpreter that runs one page's Python blocks, in order, in one namespace.

Started by :mod:`tests.docs.page_run` in the page's working directory. Requests arrive on stdin
(one JSON object a line: ``code``, ``filename``, ``line``); each answer goes to the file
descriptor named on the command line, so what the blocks print (stdout, stderr) never mixes
with the protocol. Top-level ``await`` works (one event loop per page).

An expression statement followed by a comment that is a Python literal is checked::

    result.target_state  # 'OPEN'

fails the block unless the value equals ``'OPEN'``. Comments that are not literals are prose.
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import io
import json
import os
import sys
import tokenize
import traceback
from typing import Any

CHECK = "__docs_expect__"


def _expect(value: Any, expected_source: str, line: int) -> Any:
    expected = ast.literal_eval(expected_source)
    if value != expected:
        raise AssertionError(f"line {line}: the page says {expected!r}, the code gave {value!r}")
    return value


def _literal_comments(source: str) -> dict[int, str]:
    """Line → text of a trailing comment that is a Python literal (on a line with code)."""
    found: dict[int, str] = {}
    code_lines: set[int] = set()
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            if tok.start[0] in code_lines:
                text = tok.string[1:].strip()
                try:
                    ast.literal_eval(text)
                    found[tok.start[0]] = text
                except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
                    pass
        elif tok.type not in (tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT):
            code_lines.add(tok.start[0])
    return found


def _with_checks(tree: ast.Module, comments: dict[int, str], offset: int) -> ast.Module:
    statements = [
        stmt
        for node in ast.walk(tree)
        for field in ("body", "orelse", "finalbody")
        for stmt in getattr(node, field, [])
        if isinstance(stmt, ast.stmt)
    ]
    for node in statements:
        if isinstance(node, ast.Expr) and node.end_lineno in comments:
            line = node.end_lineno
            node.value = ast.Call(
                func=ast.Name(id=CHECK, ctx=ast.Load()),
                args=[node.value, ast.Constant(comments[line]), ast.Constant(line + offset)],
                keywords=[],
            )
    return ast.fix_missing_locations(tree)


def run_block(
    code: str, filename: str, first_line: int, ns: dict[str, Any], loop: asyncio.AbstractEventLoop
) -> None:
    """Execute one block in ``ns``; page line numbers appear in tracebacks and check messages."""
    tree = _with_checks(ast.parse(code, filename), _literal_comments(code), first_line)
    ast.increment_lineno(tree, first_line)
    compiled = compile(tree, filename, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    result = eval(compiled, ns)
    if inspect.iscoroutine(result):
        loop.run_until_complete(result)


def main() -> int:
    answers = os.fdopen(int(sys.argv[1]), "w")
    sys.path.insert(0, os.getcwd())  # modules the page wrote (<!-- file: x.py -->) import
    ns: dict[str, Any] = {"__name__": "__main__", CHECK: _expect}
    loop = asyncio.new_event_loop()
    for request_line in sys.stdin:
        request = json.loads(request_line)
        try:
            run_block(request["code"], request["filename"], request["line"], ns, loop)
            answer = {"ok": True}
        except BaseException:  # the block's failure is the answer, whatever it is
            answer = {"ok": False, "error": traceback.format_exc()}
        sys.stdout.flush()
        sys.stderr.flush()
        answers.write(json.dumps(answer) + "\n")
        answers.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
