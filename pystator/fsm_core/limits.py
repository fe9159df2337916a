"""Every size limit of a machine definition, in one place.

A definition is refused with a located problem as soon as it passes one of these; the docs'
"Definition limits" table (reference/fsm-config.md) is generated from this file. The limits on the
document itself (bytes, nodes, depth) are checked while the text is read — YAML aliases are counted
as often as they are used, so a small file that expands into millions of nodes is refused before it
is built — and again on a document that arrives already parsed (a JSON request body, a dict given
to ``StateMachine.from_dict``).
"""

from __future__ import annotations

#: Largest YAML or JSON document read as text (UTF-8 bytes).
MAX_DEFINITION_BYTES = 1024 * 1024
#: Most nodes in a document — every mapping, sequence, key and scalar — with each use of a YAML
#: alias counted as a full copy of what it names.
MAX_DEFINITION_NODES = 100_000
#: Deepest nesting of mappings and sequences in a document (the top-level mapping is level 1).
MAX_DEFINITION_DEPTH = 64
#: Most states in one machine, nested states and region states included.
MAX_STATES = 5_000
#: Most entries under ``transitions:`` in one machine.
MAX_TRANSITIONS = 10_000
#: Longest name of a state, region, trigger, guard, action or machine (characters).
MAX_NAME_LENGTH = 200
#: Longest context field name an effect or a check writes or reads (characters).
MAX_FIELD_LENGTH = 200
#: Longest inline guard expression or computed value (characters).
MAX_EXPRESSION_LENGTH = 2000
#: Deepest nesting of ``allOf`` / ``anyOf`` / ``not`` in one guard entry.
MAX_CONDITION_DEPTH = 16
#: Most leaves in one guard entry.
MAX_CONDITION_PARTS = 256
#: Longest ``values`` list of an ``in`` / ``not_in`` check.
MAX_CHECK_VALUES = 1000
#: Deepest nesting of ``branch`` actions.
MAX_BRANCH_DEPTH = 8
#: Most values (list items, mapping entries, scalars) in one effect's constant.
MAX_EFFECT_VALUE_NODES = 1000
#: Longest ``after:`` / ``timeout:`` delay (about 10 years: anything longer is a typo).
MAX_DELAY_MS = 10 * 365 * 24 * 3600 * 1000

__all__ = [
    "MAX_BRANCH_DEPTH",
    "MAX_CHECK_VALUES",
    "MAX_CONDITION_DEPTH",
    "MAX_CONDITION_PARTS",
    "MAX_DEFINITION_BYTES",
    "MAX_DEFINITION_DEPTH",
    "MAX_DEFINITION_NODES",
    "MAX_DELAY_MS",
    "MAX_EFFECT_VALUE_NODES",
    "MAX_EXPRESSION_LENGTH",
    "MAX_FIELD_LENGTH",
    "MAX_NAME_LENGTH",
    "MAX_STATES",
    "MAX_TRANSITIONS",
]
