"""schemathesis 4 against the real API on PostgreSQL with an admin token (issue 28): requests
generated from our own OpenAPI find no server error, no undocumented status code and no
undocumented content type, and every response matches its declared schema.

CI runs it with a fixed seed and deterministic generation, for a bounded time (the same
requests every run: it cannot flake on a newly drawn input); ``make fuzz`` runs the same
harness for 300 s with a random seed (``tests/support/fuzzing.py``).
"""

from __future__ import annotations

import pytest

from tests.support.fuzzing import CI_SEED, fuzz

pytestmark = pytest.mark.integration

#: The CI run's budget (schemathesis' --max-time), under the 120 s the issue allows.
CI_SECONDS = 75


def test_schemathesis_finds_nothing(postgres_server_url: str) -> None:
    report = fuzz(seconds=CI_SECONDS, seed=CI_SEED, postgres_url=postgres_server_url)
    assert report.operations > 0, report.output[-3000:]
    assert report.clean, "\n".join([report.summary(), *report.details, report.output[-6000:]])
