"""Classification: which state a data record (or an entity's context) is in, by ``when`` rules.

States are tried in definition order and the first whose ``when`` entries all hold wins; a state
without ``when`` is never chosen by a rule. :meth:`ClassificationRules.match` stops there;
:meth:`ClassificationRules.classify` falls back to ``meta.classification.default_state``.

Pure and cheap: the rules are compiled once (a tuple of ``(state, predicate)``), a record costs
one predicate call per state tried. Discovery's :class:`~pystator.discovery.StateClassifier`
and a trigger-less data update (routing an entity to the state whose ``when`` matches) both
read these rules; neither evaluates checks any other way.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from pystator.fsm_core.definition import MachineDefinition
from pystator.fsm_core.when import (
    DEFAULT_CLASSIFICATION_SOURCE,
    DEFAULT_ENTITY_ID_FIELD,
    ClassificationSettings,
    Predicate,
    WhenCheck,
    when_predicate,
)


class RuleState(Protocol):
    """Anything with a ``name`` and ``when`` entries (a :class:`~pystator.State` is one)."""

    @property
    def name(self) -> str: ...

    @property
    def when(self) -> tuple[WhenCheck, ...]: ...


@dataclass(frozen=True, slots=True)
class StateRule:
    """A state name with its ``when`` entries (for rule sets built without a machine)."""

    name: str
    when: tuple[WhenCheck, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class ClassificationRules:
    """The ordered ``when`` rules of a machine plus its ``meta.classification`` settings.

    ``states`` may list any objects with ``name`` and ``when`` (states of a definition,
    :class:`StateRule`); states without ``when`` are kept out of the compiled rules.
    """

    states: tuple[RuleState, ...] = ()
    default_state: str | None = None
    entity_id_field: str = DEFAULT_ENTITY_ID_FIELD
    timestamp_field: str | None = None
    source: str = DEFAULT_CLASSIFICATION_SOURCE
    auto_route: bool = False
    compiled: tuple[tuple[str, Predicate], ...] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        compiled = []
        for state in self.states:
            predicate = when_predicate(tuple(state.when))
            if predicate is not None:
                compiled.append((state.name, predicate))
        object.__setattr__(self, "compiled", tuple(compiled))

    @classmethod
    def from_definition(cls, definition: MachineDefinition) -> ClassificationRules:
        """The rules of a machine definition (its states in order, its ``meta.classification``)."""
        settings = definition.meta.classification or ClassificationSettings()
        return cls(
            states=tuple(s for s in definition.states if s.when),
            default_state=settings.default_state,
            entity_id_field=settings.entity_id_field,
            timestamp_field=settings.timestamp_field,
            source=settings.source,
            auto_route=settings.auto_route,
        )

    @property
    def state_names(self) -> tuple[str, ...]:
        """The states that have rules, in the order they are tried."""
        return tuple(name for name, _ in self.compiled)

    def match(self, record: Mapping[str, Any]) -> str | None:
        """The first state whose ``when`` holds for ``record``; None when none does."""
        for name, predicate in self.compiled:
            if predicate(record):
                return name
        return None

    def classify(self, record: Mapping[str, Any]) -> str | None:
        """:meth:`match`, else the default state (None when there is no default either)."""
        matched = self.match(record)
        return self.default_state if matched is None else matched


class HasClassificationRules(Protocol):
    """A machine (:class:`~pystator.StateMachine` is one)."""

    @property
    def classification_rules(self) -> ClassificationRules: ...


RulesSource = ClassificationRules | MachineDefinition | HasClassificationRules


def rules_of(target: RulesSource) -> ClassificationRules:
    """The rules of a machine, a definition, or ``target`` itself when it is rules already."""
    if isinstance(target, ClassificationRules):
        return target
    if isinstance(target, MachineDefinition):
        return ClassificationRules.from_definition(target)
    return target.classification_rules


def classify(target: RulesSource, record: Mapping[str, Any]) -> str | None:
    """The state ``record`` is classified into by ``target``'s ``when`` rules (first match in
    definition order, else the default state, else None)."""
    return rules_of(target).classify(record)


__all__ = [
    "ClassificationRules",
    "HasClassificationRules",
    "RuleState",
    "RulesSource",
    "StateRule",
    "classify",
    "rules_of",
]
