# Two commands do all the set-up on a fresh clone:
#   make demo   - the main job: the example DAG against the local DevRev simulator (Airflow 3.3.2)
#   make test   - builds and checks the sdist and wheel, runs the whole test suite against that wheel on
#                 Airflow 2.11, 3.0 and 3.3 (one virtualenv each), then ruff and mypy, then the docs build
# Both create the virtualenvs and install what they need first (see ci/legs/ for what each one holds).

PYTHON ?= python3
LEGS ?= 2.11.2 3.0.6 3.3.2
CHECK_WORKERS ?= 4
BIN := .venv/bin
# .venv is the 3.3.2 leg's virtualenv (Python 3.13), with every extra (dev, docs, bench) installed from that leg's
# lock (scripts/legs.py); a build a test starts in it (tests/test_distribution.py) is held to the lock too.
LOCKED := PIP_CONSTRAINT=$(CURDIR)/ci/legs/airflow-3.3.2.lock PIP_BUILD_CONSTRAINT=$(CURDIR)/ci/legs/airflow-3.3.2.lock
# Ignored by git; the tests make their own temporary homes, the demo uses this one.
export AIRFLOW_HOME ?= $(CURDIR)/.airflow-demo

.PHONY: install lock dist demo demo-export demo-events demo-cluster test check test-one soak lint docs docs-screenshots reliability bench bench-full bench-plots clean

# An editable install into .venv, for make demo, make check, make test-one and make soak (make test installs the built wheel instead).
install:
	$(PYTHON) scripts/test_legs.py --install-only 3.3.2

# Refreshes ci/legs/*.lock and ci/dist-tools.lock deliberately: each leg resolved afresh on its own Python, Airflow's
# CLI smoke run on it, the lock rewritten only if the smoke passed. Then run make test before committing them.
# `make lock LOCK_LEGS=3.0.6` refreshes one leg.
lock:
	$(PYTHON) scripts/lock_legs.py $(LOCK_LEGS)

# dist/*.tar.gz and dist/*.whl (the wheel built from the sdist), both checked with twine check --strict.
dist:
	$(PYTHON) scripts/test_legs.py --dist-only

demo: install
	$(BIN)/python scripts/demo.py

# The other two examples: the daily crash export (dag test, SQLite) and the asset-watched triage DAG (a real
# scheduler, triggerer, dag processor and API server on loopback).
demo-export: install
	$(BIN)/python scripts/demo_export.py

demo-events: install
	$(BIN)/python scripts/demo_events.py

# The distributed deployment's scenarios (PostgreSQL, Celery on Redis, two triggerers, two workers, an S3
# server; see README "Running on a distributed Airflow") with their figures. Needs postgresql and
# redis-server (scripts/system_deps.sh installs them as root). About 10 minutes on 2 cores.
demo-cluster: install
	bash scripts/system_deps.sh
	$(BIN)/python scripts/demo_cluster.py

test:
	$(PYTHON) scripts/test_legs.py $(LEGS)
	$(MAKE) --no-print-directory lint
	$(MAKE) --no-print-directory docs

# The inner loop (under 3 minutes): every test that needs no Airflow metadata DB and no server beyond the
# simulator (`-m "not servers"`, see tests/conftest.py), on Airflow 3.3.2 in the editable .venv, on pytest-xdist
# workers. PYTHONSAFEPATH keeps `python -m` from putting the tree first on sys.path (tests/conftest.py checks).
check: install
	$(LOCKED) PYTHONSAFEPATH=1 $(BIN)/python -m pytest -p no:cacheprovider -m "not servers" -n $(CHECK_WORKERS)

# The whole suite on Airflow 3.3.2 only, in the editable .venv.
test-one: install
	$(LOCKED) PYTHONSAFEPATH=1 $(BIN)/python -m pytest -p no:cacheprovider

# The property-based tests (marked `property`) alone, 25 times their make test size, from a fresh seed each run
# (tests/properties.py). Nothing depends on it; a failure prints the @reproduce_failure line that pins it.
soak: install
	$(LOCKED) PYTHONSAFEPATH=1 DEVREV_SOAK=1 $(BIN)/python -m pytest -p no:cacheprovider -m property -n $(CHECK_WORKERS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# The documentation site (mkdocs.yml) into site/, warnings as errors: a broken link or anchor, a page missing
# from the nav, an included example file or an API reference that no longer exists fails the build.
docs: install
	$(BIN)/mkdocs build --strict

# Regenerates docs/reliability.md from a real run of the reliability and deployment tests.
reliability: install
	bash scripts/system_deps.sh
	DEVREV_RELIABILITY_REPORT=$(CURDIR)/docs/reliability.md \
	DEVREV_DEPLOYMENT_FIGURES=$(CURDIR)/docs/deployment-figures.json \
	DEVREV_CLUSTER_FIGURES=$(CURDIR)/docs/cluster-figures.json \
		$(BIN)/python -m pytest -q tests/deployment tests/reliability

# The connection form's pictures in docs/img/, from the test that drives Airflow 3.3's UI in Debian's chromium
# (tests/deployment/test_connection_form.py; scripts/system_deps.sh installs chromium as root). About a minute.
docs-screenshots: install
	bash scripts/system_deps.sh
	PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 DEVREV_SCREENSHOTS=$(CURDIR)/docs/img \
		$(BIN)/python -m pytest -q -p no:cacheprovider tests/deployment/test_connection_form.py tests/deployment/test_session_link.py

# Benchmarks (bench/README.md): one table per benchmark, written to docs/benchmarks.md. Tests time nothing.
# bench: the capacity table's six configurations (1,000 / 2,000 / 10,000 waits x 2 s / 5 s polls, DevRev trigger
# and minimal loop side by side, 3 runs: one configuration's ratio moves by up to 0.2 between runs on a shared
# machine) plus every other benchmark (about 30 minutes on 2 cores); bench-full: also HttpSensorTrigger and a
# py-spy profile at 2,000 waits x 2 s. `python -m bench --only export,bulk` runs the last two alone (~4 min).
# Each writes the document's SVG plots to docs/img/ too; bench-plots draws them again from the figures kept, in
# seconds (after editing a table, or once bench/results/rate_limit.json is written).
bench: install
	$(BIN)/python -m bench --sizes 1000,2000,10000 --poll-intervals 2,5 --contenders devrev,minimal --runs 3 $(BENCH_ARGS)

bench-full: install
	$(BIN)/python -m bench --profile $(BENCH_ARGS)

bench-plots:
	$(BIN)/python -m bench.plots

clean:
	rm -rf dist site .venv .venv-* .airflow-demo .airflow-demo-events .pytest_cache .mypy_cache .ruff_cache *.egg-info
