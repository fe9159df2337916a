"""The loan machine of the replay and shadow tests, and the candidates they try."""

from __future__ import annotations

import copy
from typing import Any

MACHINE = "loan"
#: NEW --submit--> REVIEW --decide [score > 600]--> APPROVED, else --decide--> REJECTED
LOAN: dict[str, Any] = {
    "meta": {"version": "1", "machine_name": MACHINE},
    "states": [
        {"name": "NEW", "type": "initial"},
        {"name": "REVIEW"},
        {"name": "APPROVED", "type": "terminal"},
        {"name": "REJECTED", "type": "terminal"},
    ],
    "transitions": [
        {"trigger": "submit", "source": "NEW", "dest": "REVIEW"},
        {
            "trigger": "decide",
            "source": "REVIEW",
            "dest": "APPROVED",
            "guards": [{"expr": "score > 600"}],
        },
        {"trigger": "decide", "source": "REVIEW", "dest": "REJECTED"},
    ],
}
#: Scores of the recorded entities (l0, l1, …): two approved, two rejected, one near the edge.
SCORES = (700, 650, 500, 400, 610)


def threshold(value: int) -> dict[str, Any]:
    """The loan machine with another approval threshold."""
    config = copy.deepcopy(LOAN)
    config["meta"]["version"] = f"threshold-{value}"
    config["transitions"][1]["guards"] = [{"expr": f"score > {value}"}]
    return config


def without_rejection() -> dict[str, Any]:
    """The loan machine without REVIEW --decide--> REJECTED (low scores are now refused)."""
    config = copy.deepcopy(LOAN)
    config["meta"]["version"] = "no-reject"
    del config["transitions"][2]
    return config


def shadow_candidate() -> dict[str, Any]:
    """Threshold 620, plus an action and a timer the active version does not have: shadow
    mode must never run the one nor arm the other."""
    config = threshold(620)
    config["meta"]["version"] = "shadow"
    config["transitions"][0]["actions"] = ["shadow_only_action"]
    config["transitions"].append({"trigger": "expire", "source": "REVIEW", "dest": "REJECTED"})
    config["states"][1]["timeout"] = {"seconds": 60, "destination": "REJECTED"}
    return config
