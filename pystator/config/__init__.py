"""``pystator.config``: loading and validating machine configurations, and the default ports.

The runtime settings (database, broker, worker limits) live in :mod:`pystator.config.settings`; this
namespace holds what the documentation files under ``pystator.config``: :mod:`.ports` and the
config loading/validation entry points of the engine.
"""

from __future__ import annotations

from pystator.config import ports
from pystator.fsm_core.loading import (
    ConfigValidator,
    load_definition,
    parse_json,
    parse_yaml,
    validate_config,
    validate_machine_config,
)

__all__ = [
    "ConfigValidator",
    "load_definition",
    "parse_json",
    "parse_yaml",
    "ports",
    "validate_config",
    "validate_machine_config",
]
