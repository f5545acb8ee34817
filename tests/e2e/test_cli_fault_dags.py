"""
End to end, as ``docs/testing-your-own-dags.md`` tells a user to do it: ``devrev-simulator --fault ...`` in one
process, its printed ``export AIRFLOW_CONN_DEVREV_DEFAULT=...`` pasted into the environment of
``airflow dags test example_devrev_session`` in another, on every leg. A fault the provider retries leaves the run
green; one it does not fails the run at the sensor's first check; neither shows the token. Every kind, as the
table in that page says (the test reads it).
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import shlex
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_devrev.testing.faults import FAULT_KINDS
from tests.testing.test_plugin_and_cli import LineReader

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
DAG_FILE = REPO / "dags" / "examples" / "example_devrev_session.py"
DAG_ID = "example_devrev_session"
AIRFLOW = str(Path(sys.executable).with_name("airflow"))
SIMULATOR = [sys.executable, "-m", "airflow_provider_devrev.testing"]
TOKEN = "cli-fault-dags-token-0123456789abcdefghij"
#: Deadline of one CLI command: Airflow's start-up on a loaded 2-core machine.
CLI_TIMEOUT = 300


def home_page_dag() -> str:
    """The home page's ten-line start, with the one change the page gives for Airflow 2.11."""
    page = (REPO / "docs" / "index.md").read_text(encoding="utf-8")
    [block] = re.findall(r"runs this block, as written, [^\n]*\n```python\n(.*?)```", page, flags=re.S)
    if importlib.metadata.version("apache-airflow").startswith("2."):
        block = block.replace("from airflow.sdk import DAG", "from airflow import DAG")
    return block


class Home:
    """A fresh Airflow home with a migrated SQLite DB and the example DAG, for CLI commands in other processes."""

    def __init__(self, root: Path) -> None:
        self.root = root
        dags = root / "dags"
        dags.mkdir(parents=True)
        shutil.copy(DAG_FILE, dags / DAG_FILE.name)
        (dags / "devrev_start.py").write_text(home_page_dag(), encoding="utf-8")
        inherited = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "_AIRFLOW", "PYTEST_"))}
        self.env = {
            **inherited,
            "AIRFLOW_HOME": str(root),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{root}/airflow.db",
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "DEVREV_EXAMPLE_POKE_INTERVAL": "1",
            "DEVREV_EXAMPLE_SENSOR_TIMEOUT": "120",
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
        }
        self.airflow({}, "db", "migrate")
        # Airflow 3.0-3.2's `dags test` runs the DAG stored in the DB (3.3 stores it itself).
        self.airflow({}, "dags", "reserialize")

    def airflow(self, extra_env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [AIRFLOW, *args],
            env={**self.env, **extra_env},
            cwd=self.root,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=CLI_TIMEOUT,
        )
        assert done.returncode == 0 or args[:2] == ("dags", "test"), done.stdout[-3000:] + done.stderr[-3000:]
        return done

    def states(self, run_id: str) -> dict[str, str]:
        with sqlite3.connect(f"file:{self.root / 'airflow.db'}?mode=ro", uri=True) as con:
            rows = con.execute("SELECT task_id, state FROM task_instance WHERE run_id = ?", (run_id,)).fetchall()
        return {str(task): str(state) for task, state in rows}

    def last_run_id(self, dag_id: str) -> str:
        with sqlite3.connect(f"file:{self.root / 'airflow.db'}?mode=ro", uri=True) as con:
            [(run_id,)] = con.execute(
                "SELECT run_id FROM dag_run WHERE dag_id = ? ORDER BY id DESC LIMIT 1", (dag_id,)
            ).fetchall()
        return str(run_id)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Home:
    return Home(tmp_path_factory.mktemp("airflow"))


@pytest.fixture
def simulator() -> Iterator[Callable[..., dict[str, str]]]:
    """``devrev-simulator --fault ...`` as a user starts it; returns the environment its ``export`` line sets."""
    processes: list[subprocess.Popen[str]] = []

    def start(*faults: str) -> dict[str, str]:
        args = [arg for fault in faults for arg in ("--fault", fault)]
        process = subprocess.Popen([*SIMULATOR, "--token", TOKEN, *args], stdout=subprocess.PIPE, text=True)
        processes.append(process)
        output = LineReader(process)
        assert output.next().startswith("DevRev simulator listening on ")
        export = output.next()
        name, _, value = export.removeprefix("export ").partition("=")
        return {name: shlex.split(value)[0]}

    yield start
    for process in processes:
        process.terminate()
        process.wait(CLI_TIMEOUT)


def dags_test(
    home: Home, env: dict[str, str], dag_id: str = DAG_ID
) -> tuple[subprocess.CompletedProcess[str], dict[str, str]]:
    done = home.airflow(env, "dags", "test", dag_id)
    return done, home.states(home.last_run_id(dag_id))


def test_the_home_pages_ten_line_start_runs_as_written(home: Home, simulator: Any) -> None:
    assert len(home_page_dag().strip().splitlines()) <= 10

    done, states = dags_test(home, simulator(), "devrev_start")

    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    assert states == {"wait_for_session": "success", "get_session": "success"}


def fault_table() -> list[tuple[str, str, str]]:
    """``(kind, --fault value, outcome)`` of each row of the docs' table."""
    page = (REPO / "docs" / "testing-your-own-dags.md").read_text(encoding="utf-8")
    table = page.split("<!-- fault-table:start", 1)[1].split("<!-- fault-table:end -->", 1)[0]
    rows = [line.split(" | ") for line in table.splitlines() if line.startswith("| `")]
    return [(kind.strip("| `"), fault.strip("`"), outcome) for kind, fault, outcome in rows]


FAULT_TABLE = fault_table()


def test_the_docs_table_has_one_row_per_fault_kind() -> None:
    assert sorted(kind for kind, _, _ in FAULT_TABLE) == sorted(FAULT_KINDS)
    assert all(fault.startswith(kind) for kind, fault, _ in FAULT_TABLE)
    assert all(outcome.startswith(("succeeds", "fails at once")) for _, _, outcome in FAULT_TABLE)


@pytest.mark.parametrize(("kind", "fault", "outcome"), FAULT_TABLE, ids=[row[0] for row in FAULT_TABLE])
def test_airflow_dags_test_meets_each_fault_kind_as_the_docs_say(
    home: Home, simulator: Any, kind: str, fault: str, outcome: str
) -> None:
    done, states = dags_test(home, simulator(fault))

    output = done.stdout + done.stderr
    # Airflow 3.0's in-process supervisor echoes each MaskSecret message it receives at DEBUG, secret included:
    # Airflow's code, not ours (tests/reliability/test_token_secrecy.py reports it apart). Nothing else may show it.
    ours = re.sub(r"msg=MaskSecret\(value=.*?type='MaskSecret'\)", "<Airflow's MaskSecret echo>", output, flags=re.S)
    assert TOKEN not in ours
    if outcome.startswith("succeeds"):
        assert done.returncode == 0, output[-3000:]
        assert states == {"wait_for_session": "success", "get_session": "success", "report": "success"}, output[-3000:]
        assert "Session sim-android-crash-0001 (mobile): needs triage: is_crash" in output
    else:
        # Failed by the sensor's first check: nothing downstream ran.
        assert states["wait_for_session"] == "failed", output[-3000:]
        assert states.get("get_session") in (None, "upstream_failed"), states
        assert "needs triage" not in output
    if kind == "revoked":
        assert "token_revoked" in output
    if kind == "status":
        # The 400's own message, as the table says.
        assert "Invalid session_id." in output
