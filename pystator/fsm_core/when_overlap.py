"""Do two states' ``when`` rules overlap? Proved by a witness record, never guessed.

Classification tries states in order and the first match wins, so a record both rules accept
always lands in the earlier state. Two states *overlap* when

1. both rules constrain at least one common field (rules on unrelated fields are read as a
   deliberate priority: ``overheating`` before ``shutdown``), and
2. a concrete record exists that both accept.

Each rule is expanded into alternatives (``any_of`` and ``negate`` pushed down with De Morgan's
laws; at most :data:`MAX_ALTERNATIVES` per state, beyond that the state is not analysed). For a
pair of alternatives the fields are independent, so a witness is searched per field among values
built from the checks' own constants (the constants, numbers just around and between them,
strings joining the required prefixes, infixes and suffixes, a fresh string, ``None``, booleans)
and accepted only when the checks' own predicates (the one evaluator) say every check holds.
The finding is *sound* (the witness is re-checked against both states' full rules) but not
complete: an overlap only a regular expression could reveal may go unreported.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

from pystator.fsm_core.checks import LIST_OPERATORS, PRESENCE_OPERATORS, CheckSpec
from pystator.fsm_core.classification import RuleState
from pystator.fsm_core.when import WhenCheck, when_predicate

#: Most alternatives (terms of the disjunctive form) one state's rule is expanded into.
MAX_ALTERNATIVES = 64
#: Most pairs of alternatives examined for one whole machine (bounds the lint's time).
MAX_PAIRS = 100_000
_FRESH = "\u2400other"  # a string unlikely to be any check's constant (SYMBOL FOR NULL + text)

Literal: TypeAlias = tuple[CheckSpec, bool]  # a check and whether it must hold (False: fail)
Term: TypeAlias = tuple[Literal, ...]


@dataclass(frozen=True, slots=True)
class WhenOverlap:
    """``first`` (tried first, so it wins) and ``second`` both accept ``witness``."""

    first: str
    second: str
    fields: tuple[str, ...]
    witness: Mapping[str, Any]


def find_overlaps(states: Sequence[RuleState]) -> list[WhenOverlap]:
    """Every pair of states (in order) whose ``when`` rules provably overlap."""
    ruled = [(s.name, tuple(s.when)) for s in states if s.when]
    forms = {name: _state_terms(when) for name, when in ruled}
    budget = [MAX_PAIRS]
    found = []
    for (first, when_a), (second, when_b) in itertools.combinations(ruled, 2):
        terms_a, terms_b = forms[first], forms[second]
        if terms_a is None or terms_b is None:
            continue
        overlap = _overlap(terms_a, terms_b, budget)
        if overlap is None:
            continue
        fields, witness = overlap
        both = (when_predicate(when_a), when_predicate(when_b))
        if all(p is not None and p(witness) for p in both):
            found.append(WhenOverlap(first, second, fields, witness))
    return found


def _overlap(
    terms_a: list[Term], terms_b: list[Term], budget: list[int]
) -> tuple[tuple[str, ...], dict[str, Any]] | None:
    for term_a, term_b in itertools.product(terms_a, terms_b):
        budget[0] -= 1
        if budget[0] < 0:
            return None
        common = {c.field for c, _ in term_a} & {c.field for c, _ in term_b}
        if not common:
            continue
        witness = _witness((*term_a, *term_b))
        if witness is not None:
            return tuple(sorted(common)), witness
    return None


def _witness(term: Term) -> dict[str, Any] | None:
    """A record satisfying every literal of ``term``, or None when none was found."""
    by_field: dict[str, list[Literal]] = {}
    for literal in term:
        by_field.setdefault(literal[0].field, []).append(literal)
    record: dict[str, Any] = {}
    for name, literals in by_field.items():
        for value in _candidates(literals):
            probe = {name: value}
            if all(bool(check.predicate(probe)) == holds for check, holds in literals):
                if value is not None:
                    record[name] = value
                break
        else:
            return None
    return record


def _candidates(literals: list[Literal]) -> Iterator[Any]:
    constants: list[Any] = []
    for check, _ in literals:
        if check.op in LIST_OPERATORS:
            constants.extend(check.values)
        elif check.op not in PRESENCE_OPERATORS:
            constants.append(check.value)
    yield None
    yield from constants
    numbers = sorted({c for c in constants if _is_number(c)})
    for n in numbers:
        yield from (n - 1, n + 1, n - 0.5, n + 0.5)
    for low, high in itertools.pairwise(numbers):
        yield (low + high) / 2
    yield from _strings(literals)
    yield from (0, True, False)


def _strings(literals: list[Literal]) -> Iterator[str]:
    def required(op: str) -> list[str]:
        return [c.value for c, holds in literals if holds and c.op == op]

    prefix = max(required("starts_with"), key=len, default="")
    suffix = max(required("ends_with"), key=len, default="")
    middle = "".join(required("contains"))
    for filler in ("", "x", _FRESH):
        if prefix or middle or filler or suffix:
            yield prefix + middle + filler + suffix
    yield from ("other", _FRESH)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


# --- disjunctive form ---------------------------------------------------------------------------


def _state_terms(when: tuple[WhenCheck, ...]) -> list[Term] | None:
    """The alternatives of a whole ``when`` list (an AND of its entries)."""
    return _product([_terms(entry, True) for entry in when])


def _terms(entry: WhenCheck, holds: bool) -> list[Term] | None:
    if entry.check is not None:
        return [((entry.check, holds),)]
    if entry.negate is not None:
        return _terms(entry.negate, not holds)
    parts = [_terms(child, holds) for child in entry.all_of or entry.any_of]
    conjunctive = bool(entry.all_of) == holds  # not(any_of) is an all_of of negations
    return _product(parts) if conjunctive else _union(parts)


def _product(parts: Iterable[list[Term] | None]) -> list[Term] | None:
    terms: list[Term] = [()]
    for part in parts:
        if part is None:
            return None
        terms = [a + b for a in terms for b in part]
        if len(terms) > MAX_ALTERNATIVES:
            return None
    return terms


def _union(parts: Iterable[list[Term] | None]) -> list[Term] | None:
    terms: list[Term] = []
    for part in parts:
        if part is None:
            return None
        terms.extend(part)
        if len(terms) > MAX_ALTERNATIVES:
            return None
    return terms


__all__ = ["MAX_ALTERNATIVES", "MAX_PAIRS", "WhenOverlap", "find_overlaps"]
