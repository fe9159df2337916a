"""A state's ``when:`` rules and ``meta.classification``: the definition model of classification.

``when`` lists checks that all must hold for a record to be *in* that state (a data record, or an
entity's context). Each entry is a check ``{field, op, value}`` (every operator of
:mod:`pystator.fsm_core.checks`, evaluated by that one evaluator) or a composite:

==========  ===========================  ============================================
composite   also spelled                 true when
==========  ===========================  ============================================
all_of      ``allOf``                    every child holds (the list itself is AND)
any_of      ``anyOf``                    some child holds
negate      ``not``                      its one child does not hold
==========  ===========================  ============================================

Composites nest. A :class:`WhenCheck` compiles its predicate once, when it is built, out of the
checks' own predicates (:func:`~pystator.fsm_core.conditions.fold`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from pystator.fsm_core.checks import CheckSpec
from pystator.fsm_core.conditions import AllOf, AnyOf, Condition, Not, Test, fold
from pystator.fsm_core.errors import ConfigurationError

Predicate: TypeAlias = Callable[[Mapping[str, Any]], bool]

#: Composite keys of a ``when`` entry, with the guard spellings they share a meaning with.
WHEN_COMPOSITES: Mapping[str, str] = {
    "all_of": "all_of",
    "allOf": "all_of",
    "any_of": "any_of",
    "anyOf": "any_of",
    "negate": "negate",
    "not": "negate",
}

DEFAULT_ENTITY_ID_FIELD = "entity_id"
DEFAULT_CLASSIFICATION_SOURCE = "classifier"


@dataclass(frozen=True, slots=True, kw_only=True)
class WhenCheck:
    """One entry of a state's ``when``: exactly one of ``check``, ``all_of``, ``any_of`` or
    ``negate``. ``predicate`` is compiled when it is built."""

    check: CheckSpec | None = None
    all_of: tuple[WhenCheck, ...] = ()
    any_of: tuple[WhenCheck, ...] = ()
    negate: WhenCheck | None = None
    predicate: Predicate = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        kinds = (self.check is not None) + bool(self.all_of) + bool(self.any_of)
        if kinds + (self.negate is not None) != 1:
            raise ConfigurationError(
                "a WhenCheck holds exactly one of: check, all_of, any_of, negate"
            )
        predicate = fold(self.condition())
        assert predicate is not None  # no named guards in a when
        object.__setattr__(self, "predicate", predicate)

    def condition(self) -> Condition:
        """This entry as a condition tree over its children's compiled predicates."""
        if self.check is not None:
            return Test(self.check.predicate, self.check.label)
        if self.negate is not None:
            return Not(Test(self.negate.predicate, self.negate.label))
        parts = tuple(Test(c.predicate, c.label) for c in self.all_of or self.any_of)
        return AllOf(parts) if self.all_of else AnyOf(parts)

    @property
    def label(self) -> str:
        """``temp gt 100``, ``any_of(…)``, ``negate(…)``."""
        if self.check is not None:
            return self.check.label
        if self.negate is not None:
            return f"negate({self.negate.label})"
        kind, parts = ("all_of", self.all_of) if self.all_of else ("any_of", self.any_of)
        return f"{kind}({', '.join(p.label for p in parts)})"

    def to_dict(self) -> dict[str, Any]:
        """The documented mapping of this entry."""
        if self.check is not None:
            return self.check.to_dict()
        if self.negate is not None:
            return {"negate": self.negate.to_dict()}
        if self.all_of:
            return {"all_of": [c.to_dict() for c in self.all_of]}
        return {"any_of": [c.to_dict() for c in self.any_of]}

    def checks(self) -> Iterator[CheckSpec]:
        """Every check in this entry, depth first."""
        if self.check is not None:
            yield self.check
        for child in (*self.all_of, *self.any_of, *(() if self.negate is None else (self.negate,))):
            yield from child.checks()


def when_predicate(entries: tuple[WhenCheck, ...]) -> Predicate | None:
    """One predicate for a whole ``when`` list (AND of its entries); None for an empty list."""
    if not entries:
        return None
    if len(entries) == 1:
        return entries[0].predicate
    return fold(AllOf(tuple(Test(e.predicate, e.label) for e in entries)))


@dataclass(frozen=True, slots=True, kw_only=True)
class ClassificationSettings:
    """``meta.classification``: how a data record is read when it is classified into a state.

    ``entity_id_field`` and ``timestamp_field`` name the record's fields holding the entity id
    and the observation time (None: records are stamped when ingested); ``source`` labels the
    observations; ``default_state`` is given to a record no ``when`` matches (None: such a record
    is skipped); ``auto_route`` lets a trigger-less data update move an entity to the state whose
    ``when`` matches, through an existing transition.
    """

    entity_id_field: str = DEFAULT_ENTITY_ID_FIELD
    timestamp_field: str | None = None
    source: str = DEFAULT_CLASSIFICATION_SOURCE
    default_state: str | None = None
    auto_route: bool = False


__all__ = [
    "WHEN_COMPOSITES",
    "ClassificationSettings",
    "WhenCheck",
    "when_predicate",
]
