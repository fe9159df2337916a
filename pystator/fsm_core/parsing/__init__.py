"""From a raw YAML/JSON document to a :class:`~pystator.fsm_core.definition.MachineDefinition`.

One module per part of the document (meta and the top-level sections, states and regions,
transitions, guards and conditions, actions and effects); they share one :class:`Reader` that
collects every problem with its path, so a user sees all of them at once.
"""

from pystator.fsm_core.parsing.document import parse_definition

__all__ = ["parse_definition"]
