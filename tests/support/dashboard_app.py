"""Guards and actions of the dashboard tests' machine (``tests/fixtures/dashboard/claims.yaml``).

Workers load it with ``--app tests.support.dashboard_app:factory``. ``assessor_available`` fails while
the file named by ``PYSTATOR_TEST_OUTAGE_FILE`` exists (an outage the test ends by deleting
it), so dead events become retryable; ``fraud_check`` fails for claims marked to time out.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pystator import ActionRegistry, GuardRegistry

OUTAGE_ENV = "PYSTATOR_TEST_OUTAGE_FILE"
ASSESSOR_DOWN = "assessor service unavailable: 503 from assessor.internal"
FRAUD_TIMEOUT = "fraud check timed out after 5s"


class AssessorUnavailable(RuntimeError):
    """The assessor service is down (while the outage file exists)."""


def assessor_available(ctx: Mapping[str, Any]) -> bool:
    """True, unless the claim needs the assessor during the outage (then it raises)."""
    marker = os.environ.get(OUTAGE_ENV)
    if ctx.get("needs_assessor") and marker and Path(marker).exists():
        raise AssessorUnavailable(ASSESSOR_DOWN)
    return True


def fraud_check(ctx: Mapping[str, Any]) -> bool:
    """True, unless the claim is marked to time out; rejects claims over their limit."""
    if ctx.get("fraud_timeout"):
        raise TimeoutError(FRAUD_TIMEOUT)
    return float(ctx.get("amount", 0)) <= float(ctx.get("limit", 10_000))


def notify(_ctx: Mapping[str, Any]) -> None:
    """A notification that always succeeds."""


def factory() -> tuple[GuardRegistry, ActionRegistry]:
    """The ``--app`` factory."""
    guards = GuardRegistry()
    guards.register("assessor_available", assessor_available)
    guards.register("fraud_check", fraud_check)
    actions = ActionRegistry()
    actions.register("notify", notify)
    return guards, actions
