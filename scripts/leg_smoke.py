"""
Airflow's own CLI on one leg, the way a user meets it: run with the leg's Python (``make test`` and ``make lock``
do, for every leg; by hand: ``.venv-3.0.6/bin/python scripts/leg_smoke.py``).

In a throw-away Airflow home with a Fernet key set (as in every real deployment, and in the ``airflow.cfg`` that
the CLI writes), against the DevRev simulator on 127.0.0.1:

1. ``airflow db migrate``;
2. ``airflow connections add devrev_default --conn-json ...``: stored encrypted in the metadata DB (checked);
3. ``airflow connections test devrev_default``: "Connection success!", and the simulator saw the request;
4. ``airflow dags test`` of a trivial DAG (an ``EmptyOperator``, then a ``GetSessionOperator`` that reads that
   encrypted connection): the run and both task instances succeed.

Steps 2 and 3 are what ``cryptography`` 51 breaks on Airflow 2.11.2 and 3.0.6 (no connection can be encrypted
or decrypted; Airflow reports it as not found); step 4 is what FastAPI, cadwyn and Starlette releases after
Airflow 3.0.6 break (every task fails to start with a 422 from the in-process execution API), which the suite's
``dag.test()`` from Python does not meet. Both were tried: the smoke fails on each. Exit status 0 when every step
passed; otherwise 1, with the failing step's output.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

AIRFLOW = str(Path(sys.executable).parent / "airflow")
#: Each command's bound: on a 2-core machine the slowest (`airflow db migrate`, `dags test` on 3.3) take 10-25 s.
STEP_TIMEOUT = 300
DAG_ID = "leg_smoke"
SESSION = {"platform": "android", "session_id": "sim-android-crash-0001", "version_key": "com.acme.shop@5.2.0"}
DAG = textwrap.dedent(
    f"""
    from datetime import datetime

    try:
        from airflow.sdk import DAG
    except ImportError:
        from airflow import DAG
    try:
        from airflow.providers.standard.operators.empty import EmptyOperator
    except ImportError:
        from airflow.operators.empty import EmptyOperator

    from airflow_provider_devrev.operators.devrev import GetSessionOperator

    with DAG({DAG_ID!r}, schedule=None, start_date=datetime(2025, 1, 1)):
        EmptyOperator(task_id="empty") >> GetSessionOperator(task_id="get_session", **{SESSION!r})
    """
)


class SmokeFailed(Exception):
    pass


def airflow(env: dict[str, str], *args: str) -> str:
    """Run one ``airflow`` command, bounded: past ``STEP_TIMEOUT`` its whole process group is killed (``airflow
    dags test`` starts a task process of its own on Airflow 3)."""
    started = time.monotonic()
    shown = " ".join(a if len(a) < 60 else a[:20] + "..." for a in args)
    with subprocess.Popen(
        [AIRFLOW, *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    ) as proc:
        try:
            output, _ = proc.communicate(timeout=STEP_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            output, _ = proc.communicate()
            raise SmokeFailed(f"`airflow {shown}` did not finish in {STEP_TIMEOUT} s:\n{output[-4000:]}") from None
    print(f"  airflow {shown}: exit {proc.returncode} ({time.monotonic() - started:.1f} s)", flush=True)
    if proc.returncode != 0:
        raise SmokeFailed(f"`airflow {shown}` exited {proc.returncode}:\n{output[-4000:]}")
    return output


def rows(db: Path, query: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(db) as conn:
        return conn.execute(query).fetchall()


def check(condition: bool, message: str) -> None:
    if not condition:
        raise SmokeFailed(message)


def main() -> int:
    from cryptography.fernet import Fernet

    from airflow_provider_devrev.testing import DevRevSimulator

    with tempfile.TemporaryDirectory(prefix="devrev-leg-smoke-") as tmp, DevRevSimulator() as simulator:
        home = Path(tmp)
        (home / "dags").mkdir()
        (home / "dags" / f"{DAG_ID}.py").write_text(DAG)
        db = home / "airflow.db"
        env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
        env.update(
            AIRFLOW_HOME=str(home),
            AIRFLOW__CORE__FERNET_KEY=Fernet.generate_key().decode(),
            AIRFLOW__CORE__DAGS_FOLDER=str(home / "dags"),
            AIRFLOW__CORE__LOAD_EXAMPLES="False",
            AIRFLOW__CORE__TEST_CONNECTION="Enabled",
            AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{db}",
        )
        try:
            airflow(env, "db", "migrate")
            airflow(env, "connections", "add", "devrev_default", "--conn-json", simulator.connection_json())
            encrypted = rows(db, "SELECT is_encrypted FROM connection WHERE conn_id = 'devrev_default'")
            check(encrypted == [(1,)], f"the connection is not stored encrypted: is_encrypted = {encrypted}")

            output = airflow(env, "connections", "test", "devrev_default")
            check("Connection success" in output, f"`airflow connections test` did not succeed:\n{output[-4000:]}")
            check(simulator.token not in output, "`airflow connections test` printed the token")
            seen = [(r.method, r.path) for r in simulator.requests]
            check(("GET", "/dev-users.self") in seen, f"the connection test never reached DevRev: {seen}")

            output = airflow(env, "dags", "test", DAG_ID, "2025-01-02T00:00:00+00:00")
            runs = rows(db, f"SELECT state FROM dag_run WHERE dag_id = '{DAG_ID}'")
            tasks = sorted(rows(db, f"SELECT task_id, state FROM task_instance WHERE dag_id = '{DAG_ID}'"))
            expected = [("empty", "success"), ("get_session", "success")]
            check(runs == [("success",)] and tasks == expected, f"dag run {runs}, tasks {tasks}:\n{output[-4000:]}")
            fetched = simulator.requests_for(session_id=SESSION["session_id"])
            check(bool(fetched), "the DAG's GetSessionOperator never reached DevRev")
        except SmokeFailed as failed:
            print(f"leg smoke FAILED: {failed}", flush=True)
            return 1
    print(json.dumps({"smoke": "passed"}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
