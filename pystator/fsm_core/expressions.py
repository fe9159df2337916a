"""Safe inline guard expressions (``expr: "fill_qty >= order_qty"``).

The source is parsed once with :mod:`ast` (``eval`` mode), checked against a small whitelist
and turned into nested Python closures; nothing is ever passed to ``eval``/``exec``/``compile``.

The language
    * names read from the context (a missing name is ``None``; names starting with ``__`` are
      refused);
    * constants (numbers, strings, ``None``, ``True``, ``False``), list and tuple literals;
    * comparisons, chained too (``0 < qty <= 10``), ``in`` / ``not in``, ``is`` / ``is not``;
    * ``and`` / ``or`` / ``not`` and ``a if cond else b``;
    * arithmetic ``+ - * / // %`` and unary ``-`` / ``+``;
    * subscripts ``order["qty"]`` / ``items[0]`` (a missing key or index, or a subscript of
      ``None``, is ``None``);
    * the functions in :data:`SAFE_FUNCTIONS` (positional arguments only).

No attribute access, no other calls, no lambdas, comprehensions, f-strings, slices, walrus or
star-arguments. A comparison whose operands cannot be compared (``None > 3``, ``"a" < 1``) is
``False`` rather than an error (so is one whose operand hits such a type mismatch, e.g.
``missing + 1 > 3``). Any other failure while evaluating (``1 / 0``, ``None + 1``)
raises :class:`ExpressionEvaluationError` with the original exception as its cause.
"""

from __future__ import annotations

import ast
import functools
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn, TypeAlias

from pystator.fsm_core.errors import ConfigurationError, ErrorCode, FSMError, GuardEvaluationError
from pystator.fsm_core.limits import MAX_EXPRESSION_LENGTH

MAX_SEQUENCE_REPEAT = 100_000  # elements produced by ``str * int`` / ``list * int``
MAX_ROUND_DIGITS = 100
_EXPRESSION_CACHE_SIZE = 1024

Evaluator: TypeAlias = Callable[[Mapping[str, Any]], Any]
Predicate: TypeAlias = Callable[[Mapping[str, Any]], bool]


class ExpressionError(ConfigurationError):
    """An inline expression is not valid (syntax error or a construct outside the whitelist)."""

    default_code = ErrorCode.CONFIG

    def __init__(self, message: str, *, source: object = None) -> None:
        text = source if isinstance(source, str) else repr(source)
        super().__init__(message, details={"expression": text})
        self.source = source


class ExpressionEvaluationError(GuardEvaluationError):
    """Evaluating a valid expression failed (``1 / 0``, ``None + 1`` …); the cause is kept."""

    def __init__(self, message: str, *, source: str) -> None:
        super().__init__(message, guard_name=f"expr:{source}")
        self.source = source


# --- safe functions ------------------------------------------------------------------------


def _safe_round(number: Any, ndigits: Any = None) -> Any:
    if ndigits is None:
        return round(number)
    if not isinstance(ndigits, int) or abs(ndigits) > MAX_ROUND_DIGITS:
        raise ValueError(f"round() digits must be an int within ±{MAX_ROUND_DIGITS}")
    return round(number, ndigits)


SAFE_FUNCTIONS: Mapping[str, Callable[..., Any]] = {
    "len": len,
    "abs": abs,
    "min": min,
    "max": max,
    "round": _safe_round,
    "int": int,
    "float": float,
    "str": lambda value="": str(_bounded(value)),
    "bool": bool,
}

# --- operators -----------------------------------------------------------------------------

_SEQUENCES = (str, bytes, list, tuple)


def _safe_mul(a: Any, b: Any) -> Any:
    if isinstance(a, _SEQUENCES) and isinstance(b, int):
        _check_repeat(_weight(a), b)
    elif isinstance(b, _SEQUENCES) and isinstance(a, int):
        _check_repeat(_weight(b), a)
    return a * b


def _safe_add(a: Any, b: Any) -> Any:
    if isinstance(a, _SEQUENCES) and isinstance(b, _SEQUENCES):
        _check_repeat(_weight(a) + _weight(b), 1)
    return a + b


def _check_repeat(weight: int, times: int) -> None:
    if weight * times > MAX_SEQUENCE_REPEAT:
        raise ValueError(f"a value of more than {MAX_SEQUENCE_REPEAT} elements")


def _weight(value: Any) -> int:
    """Elements (characters, items, nested items counted as often as they appear) a value
    stands for: what ``str()`` or a repetition of it would have to produce. Stops counting
    past the limit, so measuring a huge value is cheap."""
    total = 0
    stack = [value]
    while stack and total <= MAX_SEQUENCE_REPEAT:
        item = stack.pop()
        if isinstance(item, str | bytes):
            total += len(item) or 1
        elif isinstance(item, list | tuple):
            total += 1
            stack.extend(item)
        elif isinstance(item, Mapping):
            total += 1
            stack.extend(item.keys())
            stack.extend(item.values())
        else:
            total += 1
    return total


def _bounded(value: Any) -> Any:
    """``value``, refused when it stands for more than the element limit (``str()`` of it)."""
    _check_repeat(_weight(value), 1)
    return value


def _safe_mod(a: Any, b: Any) -> Any:
    if isinstance(a, str | bytes):
        raise TypeError("string formatting with % is not supported in expressions")
    return a % b


def _contains(a: Any, b: Any) -> bool:
    return a in b


def _not_contains(a: Any, b: Any) -> bool:
    return a not in b


_BIN_OPS: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: _safe_add,
    ast.Sub: operator.sub,
    ast.Mult: _safe_mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: _safe_mod,
}

_CMP_OPS: dict[type[ast.cmpop], Callable[[Any, Any], Any]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.In: _contains,
    ast.NotIn: _not_contains,
    ast.Is: operator.is_,
    ast.IsNot: operator.is_not,
}

# --- the compiled expression ---------------------------------------------------------------


class CompiledExpression:
    """A parsed, checked expression; ``evaluate(context) -> bool`` is a plain closure call."""

    __slots__ = ("evaluate", "names", "source")

    source: str
    names: frozenset[str]
    evaluate: Predicate

    def __init__(self, source: str, names: frozenset[str], predicate: Predicate) -> None:
        object.__setattr__(self, "source", source)
        object.__setattr__(self, "names", names)
        object.__setattr__(self, "evaluate", predicate)

    def __setattr__(self, name: str, value: Any) -> NoReturn:
        raise AttributeError("CompiledExpression is immutable")

    def __call__(self, context: Mapping[str, Any]) -> bool:
        """Same as :meth:`evaluate` (so an expression can stand in for a guard function)."""
        return self.evaluate(context)

    def __repr__(self) -> str:
        return f"CompiledExpression({self.source!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CompiledExpression) and other.source == self.source

    def __hash__(self) -> int:
        return hash(self.source)


def compile_expression(source: str) -> CompiledExpression:
    """Parse and check ``source`` once; raise :class:`ExpressionError` if it is not allowed.

    Compiled expressions are immutable and cached by source text.
    """
    if not isinstance(source, str):
        raise ExpressionError("an expression must be a string", source=source)
    return _compile_cached(source)


@functools.lru_cache(maxsize=_EXPRESSION_CACHE_SIZE)
def _compile_cached(source: str) -> CompiledExpression:
    tree, body, names = _compile_body(source)
    predicate = _fused_comparison(tree.body, source) or _predicate(body, source)
    return CompiledExpression(source, names, predicate)


def _compile_body(source: str) -> tuple[ast.Expression, Evaluator, frozenset[str]]:
    text = source.strip()
    if not text:
        raise ExpressionError("an expression must not be empty", source=source)
    if len(text) > MAX_EXPRESSION_LENGTH:
        raise ExpressionError(
            f"expression longer than {MAX_EXPRESSION_LENGTH} characters", source=source
        )
    tree = _parse(text, source)
    compiler = _Compiler(source)
    try:
        body = compiler.compile(tree.body)
    except RecursionError as exc:
        raise ExpressionError("expression is nested too deeply", source=source) from exc
    return tree, body, frozenset(compiler.names)


@dataclass(frozen=True, slots=True)
class CompiledValue:
    """An expression that computes a value (``compute:`` effects); same language and limits."""

    source: str
    names: frozenset[str]
    evaluate: Evaluator = field(compare=False, repr=False)


def compile_value(source: str) -> CompiledValue:
    """Parse and check ``source`` once as a value expression (:class:`ExpressionError` if bad)."""
    if not isinstance(source, str):
        raise ExpressionError("an expression must be a string", source=source)
    return _compile_value_cached(source)


@functools.lru_cache(maxsize=_EXPRESSION_CACHE_SIZE)
def _compile_value_cached(source: str) -> CompiledValue:
    _tree, body, names = _compile_body(source)

    def evaluate(context: Mapping[str, Any]) -> Any:
        try:
            return body(context)
        except FSMError:
            raise
        except Exception as exc:  # translated: expressions only raise FSMError subclasses
            raise _evaluation_error(source, exc) from exc

    return CompiledValue(source, names, evaluate)


def _parse(text: str, source: str) -> ast.Expression:
    try:
        return ast.parse(text, mode="eval")
    except SyntaxError as exc:
        where = f" at column {exc.offset}" if exc.offset else ""
        raise ExpressionError(
            f"invalid expression {source!r}: {exc.msg}{where}", source=source
        ) from exc
    except (ValueError, RecursionError, MemoryError, OverflowError) as exc:
        raise ExpressionError(f"invalid expression {source!r}: {exc}", source=source) from exc


def _fused_comparison(node: ast.expr, source: str) -> Predicate | None:
    """One-call predicate for the commonest guard shape, ``name OP name`` / ``name OP constant``."""
    if not (isinstance(node, ast.Compare) and len(node.ops) == 1):
        return None
    op = _CMP_OPS[type(node.ops[0])]
    left, right = node.left, node.comparators[0]
    if not isinstance(left, ast.Name) or op in (_contains, _not_contains):
        return None
    a = left.id
    if isinstance(right, ast.Name):
        b = right.id

        def name_name(c: Mapping[str, Any]) -> bool:
            try:
                return True if op(c.get(a), c.get(b)) else False  # noqa: SIM210
            except TypeError:
                return False
            except Exception as exc:  # translated: expressions only raise FSMError subclasses
                raise _evaluation_error(source, exc) from exc

        return name_name
    if isinstance(right, ast.Constant):
        value = right.value

        def name_const(c: Mapping[str, Any]) -> bool:
            try:
                return True if op(c.get(a), value) else False  # noqa: SIM210
            except TypeError:
                return False
            except Exception as exc:  # translated: expressions only raise FSMError subclasses
                raise _evaluation_error(source, exc) from exc

        return name_const
    return None


def _evaluation_error(source: str, exc: Exception) -> ExpressionEvaluationError:
    return ExpressionEvaluationError(
        f"evaluating {source!r} failed: {type(exc).__name__}: {exc}", source=source
    )


def _predicate(body: Evaluator, source: str) -> Predicate:
    def evaluate(context: Mapping[str, Any]) -> bool:
        try:
            return True if body(context) else False  # noqa: SIM210 - no bool() call
        except FSMError:
            raise
        except Exception as exc:  # translated: expressions only raise FSMError subclasses
            raise _evaluation_error(source, exc) from exc

    return evaluate


# --- AST → closures ------------------------------------------------------------------------


class _Compiler:
    """Turns a whitelisted AST into closures; records the context names it reads."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.names: set[str] = set()

    def refuse(self, node: ast.AST, what: str) -> NoReturn:
        col = getattr(node, "col_offset", None)
        where = f" at column {col + 1}" if isinstance(col, int) else ""
        raise ExpressionError(
            f"invalid expression {self.source!r}: {what} is not allowed{where}",
            source=self.source,
        )

    def compile(self, node: ast.expr) -> Evaluator:
        method = getattr(self, f"_{type(node).__name__}", None)
        if method is None:
            self.refuse(node, _describe(node))
        result: Evaluator = method(node)
        return result

    # leaves

    def _Constant(self, node: ast.Constant) -> Evaluator:
        value = node.value
        if value is not None and not isinstance(value, bool | int | float | str):
            self.refuse(node, f"constant {type(value).__name__}")
        return lambda c: value

    def _Name(self, node: ast.Name) -> Evaluator:
        name = node.id
        if name.startswith("__"):
            self.refuse(node, f"name {name!r}")
        self.names.add(name)
        return lambda c: c.get(name)

    def _List(self, node: ast.List) -> Evaluator:
        items = [self.compile(e) for e in node.elts]
        if all(isinstance(e, ast.Constant) for e in node.elts):
            constant = [e.value for e in node.elts if isinstance(e, ast.Constant)]
            return lambda c: list(constant)
        return lambda c: [f(c) for f in items]

    def _Tuple(self, node: ast.Tuple) -> Evaluator:
        items = [self.compile(e) for e in node.elts]
        if all(isinstance(e, ast.Constant) for e in node.elts):
            constant = tuple(e.value for e in node.elts if isinstance(e, ast.Constant))
            return lambda c: constant
        return lambda c: tuple(f(c) for f in items)

    # operators

    def _BoolOp(self, node: ast.BoolOp) -> Evaluator:
        parts = tuple(self.compile(v) for v in node.values)
        if isinstance(node.op, ast.And):
            return _and(parts)
        return _or(parts)

    def _UnaryOp(self, node: ast.UnaryOp) -> Evaluator:
        operand = self.compile(node.operand)
        if isinstance(node.op, ast.Not):
            return lambda c: not operand(c)
        if isinstance(node.op, ast.USub):
            return lambda c: -operand(c)
        if isinstance(node.op, ast.UAdd):
            return lambda c: +operand(c)
        self.refuse(node, f"operator {type(node.op).__name__}")

    def _BinOp(self, node: ast.BinOp) -> Evaluator:
        op = _BIN_OPS.get(type(node.op))
        if op is None:
            self.refuse(node, f"operator {type(node.op).__name__}")
        left, right = self.compile(node.left), self.compile(node.right)
        return lambda c: op(left(c), right(c))

    def _Compare(self, node: ast.Compare) -> Evaluator:
        ops: list[Callable[[Any, Any], Any]] = []
        for op_node in node.ops:
            op = _CMP_OPS.get(type(op_node))
            if op is None:
                self.refuse(node, f"comparison {type(op_node).__name__}")
            ops.append(op)
        operands = [node.left, *node.comparators]
        if len(ops) == 1:
            return _compare_pair(ops[0], operands[0], operands[1], self)
        return _compare_chain(ops, [self.compile(o) for o in operands])

    def _IfExp(self, node: ast.IfExp) -> Evaluator:
        test, body, orelse = (
            self.compile(node.test),
            self.compile(node.body),
            self.compile(node.orelse),
        )
        return lambda c: body(c) if test(c) else orelse(c)

    def _Subscript(self, node: ast.Subscript) -> Evaluator:
        if isinstance(node.slice, ast.Slice):
            self.refuse(node, "slicing")
        target, index = self.compile(node.value), self.compile(node.slice)

        def subscript(c: Mapping[str, Any]) -> Any:
            container = target(c)
            if container is None:
                return None
            try:
                return container[index(c)]
            except (KeyError, IndexError):
                return None

        return subscript

    def _Call(self, node: ast.Call) -> Evaluator:
        if not isinstance(node.func, ast.Name):
            self.refuse(node, "calling anything but a plain function name")
        fn = SAFE_FUNCTIONS.get(node.func.id)
        if fn is None:
            self.refuse(node, f"function {node.func.id!r}")
        if node.keywords:
            self.refuse(node, "keyword arguments")
        if any(isinstance(a, ast.Starred) for a in node.args):
            self.refuse(node, "star-arguments")
        args = tuple(self.compile(a) for a in node.args)
        if len(args) == 1:
            (only,) = args
            return lambda c: fn(only(c))
        return lambda c: fn(*[a(c) for a in args])


def _describe(node: ast.AST) -> str:
    names = {
        "Attribute": "attribute access",
        "Lambda": "lambda",
        "ListComp": "a comprehension",
        "SetComp": "a comprehension",
        "DictComp": "a comprehension",
        "GeneratorExp": "a generator expression",
        "NamedExpr": "assignment (:=)",
        "JoinedStr": "an f-string",
        "Await": "await",
        "Yield": "yield",
        "YieldFrom": "yield",
        "Starred": "star-expression",
    }
    return names.get(type(node).__name__, f"{type(node).__name__} syntax")


def _and(parts: Sequence[Evaluator]) -> Evaluator:
    if len(parts) == 2:
        first, second = parts
        return lambda c: first(c) and second(c)

    def all_of(c: Mapping[str, Any]) -> Any:
        value: Any = True
        for part in parts:
            value = part(c)
            if not value:
                return value
        return value

    return all_of


def _or(parts: Sequence[Evaluator]) -> Evaluator:
    if len(parts) == 2:
        first, second = parts
        return lambda c: first(c) or second(c)

    def any_of(c: Mapping[str, Any]) -> Any:
        value: Any = False
        for part in parts:
            value = part(c)
            if value:
                return value
        return value

    return any_of


def _compare_pair(
    op: Callable[[Any, Any], Any], left: ast.expr, right: ast.expr, compiler: _Compiler
) -> Evaluator:
    """One comparison, specialised for the common name/constant operand shapes."""
    lf, rf = compiler.compile(left), compiler.compile(right)
    membership = op is _contains or op is _not_contains
    if (
        membership
        and isinstance(right, ast.Tuple | ast.List)
        and all(isinstance(e, ast.Constant) for e in right.elts)
    ):
        rconst: Any = tuple(e.value for e in right.elts if isinstance(e, ast.Constant))
    elif isinstance(right, ast.Constant):
        rconst = right.value
    else:
        rconst = _NOT_CONSTANT
    if isinstance(left, ast.Name) and isinstance(right, ast.Name):
        a, b = left.id, right.id

        def name_name(c: Mapping[str, Any]) -> Any:
            try:
                return op(c.get(a), c.get(b))
            except TypeError:
                return False

        return name_name
    if isinstance(left, ast.Name) and rconst is not _NOT_CONSTANT:
        name = left.id

        def name_const(c: Mapping[str, Any]) -> Any:
            try:
                return op(c.get(name), rconst)
            except TypeError:
                return False

        return name_const

    def general(c: Mapping[str, Any]) -> Any:
        try:
            return op(lf(c), rf(c))
        except TypeError:
            return False

    return general


_NOT_CONSTANT = object()


def _compare_chain(
    ops: Sequence[Callable[[Any, Any], Any]], parts: Sequence[Evaluator]
) -> Evaluator:
    pairs = tuple(zip(ops, parts[1:], strict=True))
    first = parts[0]

    def chain(c: Mapping[str, Any]) -> Any:
        try:
            left = first(c)
            for op, part in pairs:
                right = part(c)
                if not op(left, right):
                    return False
                left = right
        except TypeError:
            return False
        return True

    return chain
