"""The naming rule accepts exactly its pattern: no character after the name, not even the final
newline a ``$`` anchor lets through."""

from __future__ import annotations

import pytest

from pystator.fsm_core.naming import describe_name_problem, is_valid_name


@pytest.mark.parametrize("name", ["PENDING", "order.created", "awaiting-payment", "2fa_sent", "_x"])
def test_documented_names_are_valid(name: str) -> None:
    assert is_valid_name(name) and describe_name_problem(name, "state name") is None


@pytest.mark.parametrize("name", ["abc\n", "abc\r\n", "a b", "-a", ".a", "a[0]", "a=b", "a,b", ""])
def test_anything_after_or_outside_the_pattern_is_refused(name: str) -> None:
    assert not is_valid_name(name)
    assert describe_name_problem(name, "state name") is not None
