"""
A real deployment: the deferrable example DAG survives a triggerer killed with SIGKILL while it waits.

Airflow's components run as separate processes on loopback, as an operator would start them (``airflow
scheduler``, ``airflow dag-processor``, ``airflow triggerer``, ``airflow api-server``), in a fresh home with
the embedded SQLite DB. The DevRev simulator runs in this test process (a thread); every component gets
the connection through ``AIRFLOW_CONN_DEVREV_DEFAULT``.

The session appears only some seconds after the run is triggered. While ``DevRevSessionTrigger`` polls for
it, the triggerer is SIGKILLed (with every process it started) and a new triggerer is started: Airflow must
hand the orphaned trigger to the new one, which rebuilds it from its stored arguments and polls until the
session appears; the downstream task must then receive exactly the session the simulator served. Finally
everything the deployment wrote (every file under its home, every table of its DB, trigger arguments
read as Airflow reads them) is searched for the API token: it must appear nowhere.

Run it alone with ``pytest -m deployment -s`` (``-s`` shows the figures). When ``DEVREV_DEPLOYMENT_FIGURES``
names a file, the figures are also written there as JSON.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_devrev.testing import DevRevSimulator, RecordedRequest
from tests.deployment.harness import (
    STARTUP_TIMEOUT,
    TRIGGERER_HEALTH_CHECK_THRESHOLD,
    TRIGGERER_HEARTBEAT_SECONDS,
    Deployment,
    airflow_major,
    count_in_files,
    deployment_in,
    wait_for,
)

pytestmark = [
    pytest.mark.deployment,
    pytest.mark.skipif(airflow_major() < 3, reason="starts Airflow 3's components (api-server, dag-processor)"),
]

DAG_ID = "example_devrev_session_deferrable"
TASKS = ("wait_for_session", "get_session", "report")
GET = "/observability.sessions.get"
VERSION_KEY = "com.acme.shop@5.2.0"

#: Bounds for each wait, in seconds: deadlines only (a normal run takes about a minute in all), generous because
#: a loaded 2-core machine makes every Airflow component slow.
DEFER_TIMEOUT = 180.0
RECOVER_TIMEOUT = 120.0
RUN_TIMEOUT = 180.0


# -- fixtures ----------------------------------------------------------------------------------------------


@pytest.fixture
def sim() -> Iterator[DevRevSimulator]:
    """The DevRev simulator, with a long distinctive token so that searching for it means something."""
    with DevRevSimulator(token="deploy-secret-" + secrets.token_hex(16), port=0) as simulator:
        yield simulator


@pytest.fixture
def deployment(tmp_path: Path, sim: DevRevSimulator) -> Iterator[Deployment]:
    """A fresh Airflow home with a migrated DB; every component started in it is stopped afterwards, always."""
    env = {"DEVREV_EXAMPLE_POKE_INTERVAL": "1", "DEVREV_EXAMPLE_SENSOR_TIMEOUT": "180"}
    with deployment_in(tmp_path / "airflow", sim, dag_id=DAG_ID, env=env) as deployment:
        yield deployment


# -- the test ----------------------------------------------------------------------------------------------


def test_a_deferred_sensor_survives_a_triggerer_killed_with_sigkill(sim: DevRevSimulator, deployment: Deployment):
    d = deployment

    # 1. Start the deployment; wait until every component reports healthy and the DAG is parsed.
    d.start("scheduler", "scheduler", "--skip-serve-logs")
    d.start("dag-processor", "dag-processor")
    first_triggerer = d.start("triggerer-1", "triggerer", "--skip-serve-logs")
    d.start("api-server", "api-server", "--host", "127.0.0.1", "--port", str(d.api_port), "--workers", "1")

    def all_healthy() -> dict[str, Any] | None:
        health = d.health()
        return health if health and all(part.get("status") == "healthy" for part in health.values()) else None

    wait_for("every component to report healthy", all_healthy, timeout=STARTUP_TIMEOUT, deployment=d)
    wait_for(
        f"the dag processor to store {DAG_ID}",
        lambda: d.query("SELECT dag_id FROM dag WHERE dag_id = ?", DAG_ID),
        timeout=STARTUP_TIMEOUT,
        deployment=d,
    )
    ready_at = time.monotonic()

    # 2. A session DevRev will have only later (it is uploaded once the new triggerer has polled for it: an
    # event, not a guessed delay); trigger the deferrable example DAG for it.
    upload = sim.make_session(
        "mobile",
        platform="android",
        session_id="deploy-" + secrets.token_hex(8),
        is_crash=True,
        is_anr=False,
        rage_tap=False,
    )
    session_id = upload["session_id"]
    run_id = "deploy-" + secrets.token_hex(6)
    conf = {"platform": "android", "session_id": session_id, "version_key": VERSION_KEY}
    d.cli("dags", "unpause", DAG_ID)
    d.cli("dags", "trigger", DAG_ID, "--run-id", run_id, "--conf", json.dumps(conf))
    triggered_at = time.monotonic()

    def checks() -> list[RecordedRequest]:
        """The requests for our session: the sensor's checks, then the operator's fetch."""
        return sim.requests_for(path=GET, session_id=session_id)

    # 3. The sensor checked once on the worker and deferred, and the trigger has polled at least once. Keep
    # what the trigger table holds now: the row is deleted once the trigger has fired.
    trigger_rows: list[dict[str, Any]] = []

    def deferred_and_polled() -> bool:
        answered = [r for r in checks() if r.status is not None]  # a poll may be in flight
        if d.task_states(run_id).get("wait_for_session") != "deferred" or len(answered) < 2:
            return False
        trigger_rows[:] = d.query("SELECT * FROM trigger WHERE triggerer_id IS NOT NULL")
        return bool(trigger_rows)

    wait_for("the sensor to defer and its trigger to poll", deferred_and_polled, timeout=DEFER_TIMEOUT, deployment=d)
    [first_job_id] = {row["triggerer_id"] for row in trigger_rows}

    # 4. Kill the triggerer and everything it started, mid-wait; start a new one.
    killed_at = first_triggerer.kill()
    requests_before_kill = len([r for r in sim.requests if r.time <= killed_at])
    d.start("triggerer-2", "triggerer", "--skip-serve-logs")

    # 5. The new triggerer adopts the trigger and polls; the run succeeds once the session appears.
    first_poll_after_kill = wait_for(
        "the new triggerer to poll DevRev",
        lambda: next((r for r in checks() if r.time > killed_at and r.status is not None), None),
        timeout=RECOVER_TIMEOUT,
        deployment=d,
    )
    session = sim.add_session(upload, version_key=VERSION_KEY)
    appears_at = time.monotonic()

    def finished() -> str | None:
        state = d.run_state(run_id)
        return state if state in ("success", "failed") else None

    final_state = wait_for(f"dag run {run_id} to finish", finished, timeout=RUN_TIMEOUT, deployment=d)
    finished_at = time.monotonic()
    states = d.task_states(run_id)
    assert final_state == "success", f"the run {final_state}: {states}\n{d.tails()}"
    assert states == dict.fromkeys(TASKS, "success")

    # Every task got exactly the session DevRev served; the downstream one through XCom.
    assert d.xcom(run_id, "wait_for_session") == session
    assert d.xcom(run_id, "get_session") == session
    report = d.xcom(run_id, "report")
    assert report["session"] == session
    assert report["problems"] == ["is_crash"]

    # The checks: one on the worker, the first triggerer's polls (404) until the kill, the new triggerer's
    # polls until one found the session (200), then the operator's fetch (200). Nothing else.
    requests = checks()
    found = next(i for i, r in enumerate(requests) if r.status == 200)
    sensor_checks, fetches = requests[: found + 1], requests[found + 1 :]
    before_kill = [r for r in sensor_checks if r.time <= killed_at]
    after_kill = [r for r in sensor_checks if r.time > killed_at]
    assert len(before_kill) >= 2
    assert {r.status for r in before_kill} <= {404, None}, "None: a poll in flight when the triggerer died"
    assert after_kill[0].time == first_poll_after_kill.time
    # The rebuilt trigger really waited: it polled (404) before the session appeared, then found it.
    assert len(after_kill) >= 2, "the rebuilt trigger polled (404) before the upload, then found the session"
    assert [r.status for r in after_kill[:-1]] == [404] * (len(after_kill) - 1)
    assert [r.status for r in fetches] == [200]
    assert len(sim.requests) == len(requests), "requests other than the session checks"
    job_ids = [row["id"] for row in d.query("SELECT id FROM job WHERE job_type = 'TriggererJob' ORDER BY id")]
    assert job_ids[0] == first_job_id
    [second_job_id] = job_ids[1:]

    # 6. Stop everything (so every buffer is on disk), then search everything the deployment wrote.
    d.stop_all()
    token = sim.token
    token_in_files = {path: n for path, n in count_in_files(d.home, token).items() if n}
    tables = d.dump_db()
    trigger_as_stored = "\n".join(f"{row!r}\n{d.trigger_kwargs(row['kwargs'])}" for row in trigger_rows)
    assert not token_in_files, f"the token is in files of the deployment: {token_in_files}"
    assert not [table for table, text in tables.items() if token in text], "the token is in the metadata DB"
    assert token not in trigger_as_stored, "the token is in the trigger's stored arguments"

    # The search read what matters: the logs of the three tasks and of the trigger in both triggerers,
    # the trigger's arguments as stored (and readable), the XComs and the rendered fields.
    session_in_files = count_in_files(d.home, session_id)
    run_logs = f"logs/dag_id={DAG_ID}/run_id={run_id}"
    for task_id in TASKS:
        assert session_in_files.get(f"{run_logs}/task_id={task_id}/attempt=1.log"), f"no log of {task_id}"
    sensor_log = f"{run_logs}/task_id=wait_for_session/attempt=1.log"
    assert f"{sensor_log}.trigger.{first_job_id}.log" in session_in_files, "no log of the first triggerer"
    assert session_in_files.get(f"{sensor_log}.trigger.{second_job_id}.log"), "no log of the new triggerer"
    assert f'"session_id": "{session_id}"' in trigger_as_stored, "the trigger's stored arguments are unreadable"
    for table in ("trigger", "xcom", "rendered_task_instance_fields", "log", "task_instance"):
        assert table in tables, table
    for table in ("xcom", "rendered_task_instance_fields"):
        assert session_id in tables[table], f"the session is not in {table}"

    figures = {
        "test_wall_time_s": round(time.monotonic() - d.created_at, 1),
        "deployment_ready_s": round(ready_at - d.created_at, 1),
        "dag_run_wall_time_s": round(finished_at - triggered_at, 1),
        "kill_after_trigger_s": round(killed_at - triggered_at, 1),
        "time_to_recover_s": round(first_poll_after_kill.time - killed_at, 1),
        "session_appeared_after_kill_s": round(appears_at - killed_at, 1),
        "requests_total": len(sim.requests),
        "requests_before_kill": requests_before_kill,
        "requests_after_kill": len(sim.requests) - requests_before_kill,
        "worker_checks": 1,
        "first_triggerer_polls": len(before_kill) - 1,
        "new_triggerer_polls": len(after_kill),
        "operator_fetches": len(fetches),
        "triggerer_heartbeat_s": TRIGGERER_HEARTBEAT_SECONDS,
        "triggerer_health_check_threshold_s": TRIGGERER_HEALTH_CHECK_THRESHOLD,
        "files_searched": len(session_in_files),
        "db_tables_searched": len(tables),
        "token_hits": 0,
        "trigger_kwargs_encrypted_in_db": not all(row["kwargs"].startswith("{") for row in trigger_rows),
    }
    print("\ndeployment figures:", json.dumps(figures, indent=2))
    if os.environ.get("DEVREV_DEPLOYMENT_FIGURES"):
        Path(os.environ["DEVREV_DEPLOYMENT_FIGURES"]).write_text(json.dumps(figures, indent=2) + "\n")
