# Two commands do all the set-up on a fresh clone:
#   make demo   - the main job: the example DAG against the local DevRev simulator
#   make test   - the whole test suite (plus ruff and mypy)
# Both create the virtualenv and install what they need first.

PYTHON ?= python3
VENV ?= .venv
AIRFLOW_VERSION ?= 3.3.2
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(AIRFLOW_VERSION)
# Ignored by git; the tests make their own temporary homes, the demo uses this one.
export AIRFLOW_HOME ?= $(CURDIR)/.airflow-demo

.PHONY: install demo test lint reliability clean

install: $(STAMP)

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check \
		"apache-airflow==$(AIRFLOW_VERSION)" -e ".[dev]"
	touch $@

demo: $(STAMP)
	$(BIN)/python scripts/demo.py

test: $(STAMP)
	$(BIN)/python -m pytest
	$(MAKE) --no-print-directory lint

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# Regenerates docs/reliability.md from a real run of the reliability and deployment tests.
reliability: $(STAMP)
	DEVREV_RELIABILITY_REPORT=$(CURDIR)/docs/reliability.md \
	DEVREV_DEPLOYMENT_FIGURES=$(CURDIR)/docs/deployment-figures.json \
		$(BIN)/python -m pytest -q tests/deployment tests/reliability

clean:
	rm -rf $(VENV) .airflow-demo .pytest_cache .mypy_cache .ruff_cache *.egg-info
