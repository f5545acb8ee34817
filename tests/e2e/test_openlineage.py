"""
End to end: ``airflow dags test`` of the daily crash export example, with the OpenLineage provider and its file
transport configured the way a deployment configures it (``AIRFLOW__OPENLINEAGE__TRANSPORT``), against the
simulator on loopback: the events it writes name the DevRev sessions each export read and the file it wrote.

Each run gets its own Airflow home and SQLite DB (the CLI runs in processes of its own), as in test_settle_wait.py.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from airflow_provider_devrev.testing import DevRevSimulator

#: The OpenLineage provider is on the 2.11.2 and 3.3.2 legs only (ci/legs/*.txt); 3.0.6 runs without it.
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        importlib.util.find_spec("airflow.providers.openlineage") is None,
        reason="apache-airflow-providers-openlineage is not installed on this leg (3.0.6 goes without it)",
    ),
]

REPO = Path(__file__).resolve().parents[2]
DAG_FILE = REPO / "dags" / "examples" / "example_devrev_crash_export.py"
DAG_ID = "example_devrev_crash_export"
VERSION_KEY = "com.acme.shop@5.2.0"
AIRFLOW = str(Path(sys.executable).with_name("airflow"))
#: Deadline of one CLI command: Airflow's start-up on a loaded 2-core machine (a run took 30 s unloaded).
CLI_TIMEOUT = 300


def names(datasets: list[dict[str, str]]) -> list[tuple[str, str]]:
    return [(dataset["namespace"], dataset["name"]) for dataset in datasets]


def test_the_export_example_emits_start_and_complete_naming_devrevs_sessions_and_the_files(tmp_path):
    root = tmp_path / "airflow"
    (root / "dags").mkdir(parents=True)
    shutil.copy(DAG_FILE, root / "dags" / DAG_FILE.name)
    events, exports = root / "openlineage.jsonl", root / "exports"
    # The seeded data (the default seed): crash sessions on 2025-06-02 on both platforms, in the run at midnight after.
    with DevRevSimulator(port=0) as sim:
        inherited = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "_AIRFLOW", "PYTEST_"))}
        env = {
            **inherited,
            "AIRFLOW_HOME": str(root),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{root}/airflow.db",
            "AIRFLOW__CORE__DAGS_FOLDER": str(root / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW_CONN_DEVREV_DEFAULT": sim.connection_json(),
            "DEVREV_EXPORT_BASE": exports.as_uri(),
            # OpenLineage's own file transport, one event a line; nothing leaves the machine.
            "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps(
                {"type": "file", "log_file_path": str(events), "append": True}
            ),
            "AIRFLOW__OPENLINEAGE__NAMESPACE": "devrev-e2e",
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
        }
        # Airflow 3.0-3.2's `dags test` runs the DAG stored in the DB (3.3 stores it itself).
        for args in (("db", "migrate"), ("dags", "reserialize"), ("dags", "test", DAG_ID, "2025-06-03")):
            done = subprocess.run(
                [AIRFLOW, *args],
                env=env,
                cwd=root,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=CLI_TIMEOUT,
                check=False,
            )
            assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        namespace = f"devrev://127.0.0.1:{sim.port}"
        token = sim.token

    written = events.read_text(encoding="utf-8")
    emitted = [json.loads(line) for line in written.splitlines()]
    for platform in ("android", "ios"):
        job = f"{DAG_ID}.export_{platform}_crashes"
        mine = [event for event in emitted if event["job"]["name"] == job]
        assert [event["eventType"] for event in mine] == ["START", "COMPLETE"], [e["eventType"] for e in mine]
        file = exports / "2025-06-02" / f"{platform}-crash-sessions.jsonl"
        for event in mine:
            assert event["job"]["namespace"] == "devrev-e2e"
            assert names(event["inputs"]) == [(namespace, f"{platform}/{VERSION_KEY}")]
            # The provider's name for a local file: namespace "file" and the absolute path.
            assert names(event["outputs"]) == [("file", str(file))]
        # The dataset named is the file the export published, holding that day's crash sessions.
        sessions = [json.loads(line) for line in file.read_text(encoding="utf-8").splitlines()]
        assert sessions
        assert {session["is_crash"] for session in sessions} == {True}
        assert {session["session_id"] for session in sessions} >= (
            {"sim-android-crash-0001"} if platform == "android" else set()
        )
    assert token not in written
