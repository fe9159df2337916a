"""The safe ``expr:`` language: semantics, refusals, and fuzzing (never a non-FSMError)."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pystator import ConfigurationError, FSMError, GuardEvaluationError
from pystator.fsm_core.expressions import (
    CompiledExpression,
    ExpressionError,
    ExpressionEvaluationError,
    compile_expression,
)
from pystator.fsm_core.limits import MAX_EXPRESSION_LENGTH

CTX = {
    "qty": 5,
    "fill_qty": 100,
    "order_qty": 100,
    "side": "buy",
    "flags": ["a", "b"],
    "order": {"qty": 3, "lines": [10, 20]},
    "zero": 0,
    "price": 2.5,
    "none": None,
}


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("fill_qty >= order_qty", True),
        ("fill_qty > order_qty", False),
        ("qty > 0", True),
        ("qty == 5 and side == 'buy'", True),
        ("qty == 5 and side == 'sell'", False),
        ("qty < 0 or side != 'sell'", True),
        ("not qty", False),
        ("not (qty > 10)", True),
        ("0 < qty <= 5", True),
        ("0 < qty < 5", False),
        ("1 < 2 < 3 < qty", True),
        ("side in ['buy', 'sell']", True),
        ("side not in ('buy', 'sell')", False),
        ("'a' in flags", True),
        ("order['qty'] * 2 + 1 == 7", True),
        ("order['lines'][1] == 20", True),
        ("order['missing'] is None", True),
        ("order['lines'][9] is None", True),
        ("none['x'] is None", True),
        ("-qty == -5", True),
        ("+qty == 5", True),
        ("qty // 2 == 2 and qty % 2 == 1 and qty / 2 == 2.5", True),
        ("qty - 1 == 4", True),
        ("price * 2 == 5.0", True),
        ("len(flags) == 2", True),
        ("abs(-3) == 3 and min(1, qty) == 1 and max(1, qty) == 5", True),
        ("round(price) == 2 and round(2.567, 2) == 2.57", True),
        ("int('7') + float('0.5') == 7.5 and str(qty) == '5' and bool(1)", True),
        ("'yes' if qty > 3 else ''", True),
        ("missing", False),
        ("missing is None", True),
        ("missing > 3", False),  # incomparable: False, not an error
        ("missing + 1 > 3", False),  # type mismatch inside a comparison: False
        ("side < 1", False),
        ("not (missing > 3)", True),
        ("missing in flags", False),
        ("qty in none", False),
        ("[1, qty] == [1, 5]", True),
        ("(qty, 1) == (5, 1)", True),
        ("qty", True),
        ("True", True),
        ("None", False),
        ("qty > 0 and fill_qty > 0 and order_qty > 0", True),
        ("qty < 0 or fill_qty < 0 or zero", False),
        ("zero == 0 == zero", True),
    ],
)
def test_evaluates(source: str, expected: bool) -> None:
    expr = compile_expression(source)
    assert expr.evaluate(CTX) is expected
    assert expr(CTX) is expected


def test_names_and_source() -> None:
    expr = compile_expression("fill_qty >= order_qty and len(flags) > 0 and x['k'] == y")
    assert expr.source == "fill_qty >= order_qty and len(flags) > 0 and x['k'] == y"
    assert expr.names == frozenset({"fill_qty", "order_qty", "flags", "x", "y"})


def test_compiled_expression_is_immutable_and_cached() -> None:
    expr = compile_expression("qty > 1")
    with pytest.raises(AttributeError):
        expr.source = "x"  # type: ignore[misc]
    assert compile_expression("qty > 1") is expr
    assert expr == CompiledExpression("qty > 1", frozenset(), lambda c: True)
    assert hash(expr) == hash("qty > 1") and "qty > 1" in repr(expr)


def test_context_names_shadow_nothing_callable() -> None:
    # "len" as a name reads the context; only in call position is it the safe function.
    assert compile_expression("len == 3").evaluate({"len": 3}) is True
    assert compile_expression("len(len) == 1").evaluate({"len": [0]}) is True


def test_expression_error_is_a_configuration_error() -> None:
    assert issubclass(ExpressionError, ConfigurationError)
    assert issubclass(ExpressionEvaluationError, GuardEvaluationError)
    with pytest.raises(ExpressionError) as info:
        compile_expression("qty >")
    assert "invalid expression 'qty >'" in str(info.value)
    assert info.value.details["expression"] == "qty >"


@pytest.mark.parametrize(
    "source",
    [
        "__import__('os')",
        "__import__('os').system('true')",
        "().__class__",
        "().__class__.__bases__[0].__subclasses__()",
        "qty.__class__",
        "__builtins__",
        "__class__",
        "lambda: 1",
        "[x for x in flags]",
        "{x for x in flags}",
        "{k: 1 for k in flags}",
        "(x for x in flags)",
        "f'{qty}'",
        "(y := 1)",
        "flags[0:1]",
        "open('/etc/passwd')",
        "eval('1')",
        "exec('1')",
        "getattr(qty, 'real')",
        "len(*flags)",
        "round(number=1)",
        "qty ** 2",
        "qty << 1",
        "qty & 1",
        "~qty",
        "{'a': 1}",
        "{1, 2}",
        "b'bytes'",
        "1j",
        "...",
        "flags.append(1)",
        "(lambda: 1)()",
        "qty if True else __import__('os')",
        "await qty",
        "x = 1",
        "import os",
        "",
        "   ",
        "qty >",
        "a b",
        "x" * (MAX_EXPRESSION_LENGTH + 1),
        "(" * 300 + "1" + ")" * 300,
        "a\x00b",
        "-" * 1999 + "1",
        "not " * 499 + "1",
    ],
)
def test_refuses_at_compile_time(source: str) -> None:
    with pytest.raises(ExpressionError):
        compile_expression(source)


@pytest.mark.parametrize("source", [None, 3, b"qty > 1", ["qty"]])
def test_refuses_non_strings(source: Any) -> None:
    with pytest.raises(ExpressionError, match="must be a string"):
        compile_expression(source)


@pytest.mark.parametrize(
    ("source", "cause"),
    [
        ("qty / zero > 1 or 1 / zero", ZeroDivisionError),
        ("1 // zero", ZeroDivisionError),
        ("none + 1", TypeError),
        ("-side", TypeError),
        ("int(side)", ValueError),
        ("'ab' * 1000000", ValueError),
        ("flags * 60000", ValueError),
        ("side % 1", TypeError),
        ("round(price, 1000000000)", ValueError),
        ("order[flags]", TypeError),
    ],
)
def test_evaluation_failures_raise_fsm_errors(source: str, cause: type[Exception]) -> None:
    expr = compile_expression(source)
    with pytest.raises(ExpressionEvaluationError) as info:
        expr.evaluate(CTX)
    assert isinstance(info.value.__cause__, cause)
    assert info.value.guard_name == f"expr:{source}"


def test_non_mapping_context_is_an_fsm_error() -> None:
    with pytest.raises(ExpressionEvaluationError):
        compile_expression("qty > 1").evaluate(42)  # type: ignore[arg-type]


def test_evaluate_result_is_always_bool() -> None:
    assert compile_expression("flags").evaluate(CTX) is True
    assert compile_expression("qty and side").evaluate(CTX) is True
    assert compile_expression("zero or none").evaluate(CTX) is False
    assert compile_expression("zero or none or side or qty").evaluate(CTX) is True
    assert compile_expression("qty and side and zero and flags").evaluate(CTX) is False


# --- fuzzing --------------------------------------------------------------------------------

_TOKENS = st.sampled_from(
    [
        "qty",
        "fill_qty",
        "flags",
        "order",
        "none",
        "missing",
        "len",
        "min",
        "round",
        "str",
        "0",
        "1",
        "-1",
        "2.5",
        "'a'",
        "''",
        "None",
        "True",
        "False",
        "[",
        "]",
        "(",
        ")",
        ",",
        "+",
        "-",
        "*",
        "/",
        "//",
        "%",
        "**",
        "<",
        "<=",
        ">",
        ">=",
        "==",
        "!=",
        " in ",
        " not in ",
        " is ",
        " and ",
        " or ",
        "not ",
        " if ",
        " else ",
        ".",
        "__class__",
        "lambda",
        ":",
        "[0]",
        "['qty']",
        "{",
        "}",
        "__import__",
        "'os'",
        " for ",
        "x",
    ]
)

_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=3), children, max_size=3)
    ),
    max_leaves=8,
)
_CONTEXTS = st.dictionaries(
    st.sampled_from(["qty", "fill_qty", "flags", "order", "none", "x", "len"]), _JSON
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=60))
def test_random_text_only_raises_fsm_errors_at_compile_time(source: str) -> None:
    with contextlib.suppress(FSMError):
        compile_expression(source)


@settings(max_examples=300, deadline=None)
@given(st.lists(_TOKENS, min_size=1, max_size=12).map("".join), _CONTEXTS)
def test_random_token_soup_never_escapes_fsm_errors(source: str, context: dict[str, Any]) -> None:
    try:
        expr = compile_expression(source)
    except ExpressionError:
        return
    try:
        result = expr.evaluate(context)
    except FSMError:
        return
    assert result is True or result is False


@settings(max_examples=200, deadline=None)
@given(_CONTEXTS)
def test_random_contexts_never_escape_fsm_errors(context: dict[str, Any]) -> None:
    for source in (
        "qty > fill_qty",
        "qty + 1 > 2 and flags[0] == x",
        "len(flags) > 1 or order['qty'] >= 1",
        "min(qty, 3) < max(fill_qty, 1)",
        "qty * 2 == x",
        "qty % 3 == 1",
        "str(order) != ''",
        "-qty < 0 < x",
        "round(qty) == 1",
        "x in flags",
    ):
        try:
            value = compile_expression(source).evaluate(context)
        except FSMError:
            continue
        assert isinstance(value, bool)


class _Weird:
    """Comparisons raise something other than TypeError; truthiness is not a bool."""

    def __ge__(self, other: object) -> bool:
        raise ValueError("cannot compare")

    def __eq__(self, other: object) -> Any:
        return [1]  # truthy non-bool

    __hash__ = object.__hash__


@pytest.mark.parametrize("source", ["w >= qty", "w >= 3", "(w >= 3) or False"])
def test_user_objects_raising_in_comparisons_become_fsm_errors(source: str) -> None:
    with pytest.raises(ExpressionEvaluationError) as info:
        compile_expression(source).evaluate({"w": _Weird(), "qty": 1})
    assert isinstance(info.value.__cause__, ValueError)


@pytest.mark.parametrize("source", ["w == qty", "w == 3", "(w == 3) and True"])
def test_non_bool_comparison_results_are_coerced(source: str) -> None:
    assert compile_expression(source).evaluate({"w": _Weird(), "qty": 1}) is True


@pytest.mark.parametrize(
    "source",
    [
        "len(str([[0] * 100000] * 100000)) > 0",  # a list of one huge list, repeated: 10^10
        "len([0] * 60000 + [0] * 60000) > 0",  # concatenation past the limit
        "len(str(['x' * 90000, 'y' * 90000])) > 0",  # str() of a value standing for 180,000
    ],
)
def test_values_past_the_element_limit_are_refused_not_built(source: str) -> None:
    guard = compile_expression(source)
    with pytest.raises(GuardEvaluationError, match="more than 100000 elements"):
        guard.evaluate({})


def test_values_within_the_limit_still_work() -> None:
    assert compile_expression("len(str([1, 2] * 3) + 'ab') == 20").evaluate({})
