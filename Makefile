# `make demo` and `make test` each do their own set-up on a fresh machine (Python 3.11+).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

# Local services used by the integration tests (override from the environment).
export PYSTATOR_TEST_POSTGRES_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/postgres
export PYSTATOR_TEST_REDIS_URL ?= redis://127.0.0.1:6379/0
export PYSTATOR_TEST_AMQP_URL ?= amqp://guest:guest@127.0.0.1:5672//

.PHONY: demo dashboard examples docs test lint typecheck pytest fuzz bench soak screenshots clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[all,dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/pystator demo

# The runnable examples (examples/README.md), one after the other.
examples: $(STAMP)
	for script in basic_usage day_trading_example portfolio_optimization_example; do \
	  $(BIN)/python examples/$$script.py || exit 1; done

# The dashboard on the last demo's database: http://127.0.0.1:8000/ui (runs the demo first if needed).
dashboard: $(STAMP)
	test -f pystator-demo.db || $(BIN)/pystator demo
	PYSTATOR_DATABASE_URL=sqlite:///$(CURDIR)/pystator-demo.db \
	  PYSTATOR_MACHINES=$(CURDIR)/examples/fleet_demo.yaml $(BIN)/pystator api

lint: $(STAMP)
	$(BIN)/ruff check pystator tests bench examples docs/_hooks
	$(BIN)/ruff format --check pystator tests bench examples docs/_hooks

typecheck: $(STAMP)
	$(BIN)/mypy

# In PYTEST_WORKERS processes (pytest-xdist): most tests wait on PostgreSQL, Redis, RabbitMQ or
# worker processes, so two test processes keep two cores busy. Every test isolates itself (its
# own database, Redis database, queue names and ports), so any order and any split is fine.
PYTEST_WORKERS ?= 2
pytest: $(STAMP)
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist worksteal

# The documentation site, built strictly: a broken link, a missing page or a reference
# mkdocstrings cannot resolve fails (`pystator docs` serves it; `pystator api` under /manual).
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict  # not --quiet: it hides the warnings --strict counts

test: lint typecheck docs pytest

# schemathesis against a real API on PostgreSQL for 300 s with a random seed (CI runs a fixed
# seed for 75 s in tests/api/test_api_fuzz.py); prints the failures per kind, exits 1 on any.
fuzz: $(STAMP)
	$(BIN)/python -m tests.support.fuzzing --seconds 300

bench: $(STAMP)
	$(BIN)/python bench/core.py
	$(BIN)/python bench/fleet.py
	$(BIN)/python bench/timers.py
	$(BIN)/python bench/api.py
	$(BIN)/python bench/dashboard.py
	$(BIN)/python bench/retention.py
	$(BIN)/python -m pip install -q -e '.[bench]'
	$(BIN)/python bench/discovery.py

# 20 minutes at 300 events/s with timers, a worker SIGKILLed every 2-4 minutes, the pruner on:
# worker memory and the broker's queue depth sampled and plotted (not part of CI).
soak: $(STAMP)
	$(BIN)/python -m pip install -q -e '.[bench]'
	$(BIN)/python bench/soak.py --minutes 20 --rate 300 \
	  --out docs/operations/soak.json --plot docs/operations/soak.png

# Re-take the screenshots of the docs (dashboard pages and the tutorials) with the browser tests
# (needs chromium + chromium-driver and the services).
screenshots: $(STAMP)
	PYSTATOR_SCREENSHOTS=$(CURDIR)/docs/screenshots $(BIN)/pytest -q tests/browser

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache site
