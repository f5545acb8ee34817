"""
Test-wide Airflow set-up, done before anything imports Airflow.

Each run gets its own Airflow home (and SQLite DB) in a temporary folder, unless AIRFLOW_HOME is already
set by the caller (README's test command sets it to an ignored folder in the clone).

The provider package sits at the repository root, beside ``tests/`` and ``bench/``. The tests import their
helpers (``tests.*``, ``bench.*``) from this tree, so the root goes on ``sys.path``, but *last*: the provider
must come from the virtualenv (the wheel on every leg of ``make test``). Nothing may put the root first:
``make test`` runs pytest with ``PYTHONSAFEPATH=1`` (``python -m`` would prepend the working directory), and
:func:`pytest_sessionstart` fails the session at once if the provider was imported from anywhere else.
"""

from __future__ import annotations

import atexit
import functools
import importlib.metadata
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.append(str(REPO))
E2E_DAGS = REPO / "tests" / "e2e" / "dags"

_home = os.environ.get("DEVREV_TEST_AIRFLOW_HOME") or ""
if not _home:
    _home = tempfile.mkdtemp(prefix="airflow-devrev-tests-")
    # Ours to remove: a thousand runs must not leave a thousand homes (with their SQLite DBs) in /tmp.
    atexit.register(shutil.rmtree, _home, ignore_errors=True)
if os.environ.get("PYTEST_XDIST_WORKER") and os.environ.get("DEVREV_TEST_AIRFLOW_HOME"):
    # Each pytest-xdist worker is a process with its own SQLite DB: a home named by the caller is split.
    _home = os.path.join(_home, os.environ["PYTEST_XDIST_WORKER"])
    os.makedirs(_home, exist_ok=True)
os.environ["AIRFLOW_HOME"] = _home
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{_home}/airflow.db"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(Path(_home) / "dags")
os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "False")
# A developer's own connection must never leak into a test.
for _name in list(os.environ):
    if _name.startswith("AIRFLOW_CONN_"):
        del os.environ[_name]


#: Fixtures that start something beyond the simulator: the Airflow metadata DB, a forward proxy.
SERVER_FIXTURES = frozenset({"airflow_db", "open_proxy", "auth_proxy"})


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """
    Mark ``servers`` every test that needs the Airflow metadata DB (``e2e`` runs ``dag.test()``) or a server
    beyond the simulator: ``make check`` runs the rest (``-m "not servers"``).
    """
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        if item.get_closest_marker("e2e") or item.get_closest_marker("deployment") or fixtures & SERVER_FIXTURES:
            item.add_marker(pytest.mark.servers)


def pytest_sessionstart(session: pytest.Session) -> None:
    """
    Refuse to run against anything but the installed provider: on a leg of ``make test``
    (``DEVREV_TEST_WHEEL`` set) the wheel in that leg's virtualenv; elsewhere (``make check``, the editable
    ``.venv``) an editable install of this tree is allowed too.
    """
    import airflow_provider_devrev

    module = Path(airflow_provider_devrev.__file__).resolve()
    venv = Path(sys.prefix).resolve()
    # Every copy of the metadata on sys.path: an editable install also leaves an egg-info in this tree.
    editable = any(
        json.loads(dist.read_text("direct_url.json") or "{}").get("dir_info", {}).get("editable")
        for dist in importlib.metadata.distributions(name="airflow-provider-devrev")
    )
    on_a_leg = bool(os.environ.get("DEVREV_TEST_WHEEL"))
    if on_a_leg:
        installed = module.is_relative_to(venv) and not editable
    else:
        installed = module.is_relative_to(venv) or (editable and module.is_relative_to(REPO))
    if installed:
        return
    raise pytest.UsageError(
        f"the provider under test is {module}, not a package installed in this virtualenv ({venv})"
        + (" from the wheel" if on_a_leg else "")
        + ": something put the working tree first on sys.path (run pytest with PYTHONSAFEPATH=1, never with"
        " the repository root on PYTHONPATH)"
    )


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """
    Populate the dags folder (the example DAGs and the e2e failure-path DAGs) and create the metadata DB,
    once per test session.
    """
    dags_folder = Path(os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
    dags_folder.mkdir(parents=True, exist_ok=True)
    for source in [*sorted((REPO / "dags" / "examples").glob("*.py")), *sorted(E2E_DAGS.glob("*.py"))]:
        shutil.copy(source, dags_folder / source.name)

    from airflow.utils.db import resetdb

    resetdb()
    _one_in_process_execution_api()
    # dag.test() on Airflow 3.0-3.2 needs the DAGs serialized in the DB already (3.3 syncs them itself);
    # the CLI does it the way the dag processor does, on every version.
    import subprocess
    import sys

    airflow = str(Path(sys.executable).with_name("airflow"))
    subprocess.run([airflow, "dags", "reserialize"], check=True, capture_output=True, timeout=300)
    return dags_folder


def _one_in_process_execution_api() -> None:
    """
    One in-process Execution API for every ``dag.test()`` of the session, as Airflow 3.3 has it.

    Airflow 3.0's ``dag.test()`` builds a new one for every task it runs (``in_process_api_server()`` in
    ``airflow.sdk.execution_time.supervisor``, Task SDK 1.0.x): a FastAPI app whose Cadwyn routers are versioned
    afresh, plus an a2wsgi event-loop thread, 1-1.5 s a task on 2 cores; it made the 3.0.6 leg take 3.4 times as
    long as 2.11.2's. Later Airflow caches it (apache/airflow#65235, ``functools.lru_cache(maxsize=1)``), which
    this does too, in the test process only. A no-op on 2.11 (no Task SDK) and where it is cached already.
    """
    try:
        from airflow.sdk.execution_time import supervisor
    except ImportError:  # Airflow 2.11
        return
    if not hasattr(supervisor.in_process_api_server, "cache_info"):
        supervisor.in_process_api_server = functools.lru_cache(maxsize=1)(supervisor.in_process_api_server)


@pytest.fixture
def fast_examples(monkeypatch):
    """The example DAGs poll every 0.2 s here instead of every minute."""
    monkeypatch.setenv("DEVREV_EXAMPLE_POKE_INTERVAL", "0.2")
    monkeypatch.setenv("DEVREV_EXAMPLE_SENSOR_TIMEOUT", "30")


@pytest.fixture(autouse=True)
def _fresh_rate_gates():
    """
    Every test starts with no shared rate-limit pause: the gates live for the process, and a 429 scripted by
    one test must not pause the next one's requests to a host and token they happen to share.
    """
    from airflow_provider_devrev.hooks import _rate_gate

    _rate_gate.clear_caches()
    yield
    _rate_gate.clear_caches()
