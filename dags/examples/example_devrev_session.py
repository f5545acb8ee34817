"""
Wait for a DevRev session to be uploaded, fetch it, and report on it downstream.

Two DAGs from one file, identical but for how the sensor waits:

- ``example_devrev_session``: the sensor waits in a worker slot (poke mode);
- ``example_devrev_session_deferrable``: the sensor hands the wait to the triggerer (no worker slot).

``platform``, ``session_id`` and ``version_key`` are DAG params; their defaults name a session of the DevRev
simulator's seed data (``python -m airflow_provider_devrev.testing``), so both DAGs run as they are against it.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from typing import Any

try:  # Airflow 3
    from airflow.sdk import DAG, Param, task
except ImportError:  # Airflow 2.11
    from airflow import DAG  # type: ignore[no-redef]
    from airflow.decorators import task  # type: ignore[no-redef]
    from airflow.models.param import Param  # type: ignore[no-redef]

from airflow_provider_devrev.operators.devrev import GetSessionOperator
from airflow_provider_devrev.sensors.devrev import DevRevSessionSensor

# Real uploads take minutes; the demo and tests shorten the wait through the environment.
POKE_INTERVAL = float(os.environ.get("DEVREV_EXAMPLE_POKE_INTERVAL", "60"))
SENSOR_TIMEOUT = float(os.environ.get("DEVREV_EXAMPLE_SENSOR_TIMEOUT", str(6 * 60 * 60)))

PARAMS = {
    "platform": Param("android", enum=["android", "ios", "web"]),
    "session_id": Param("sim-android-crash-0001", type="string", minLength=1),
    "version_key": Param("com.acme.shop@5.2.0", type="string", minLength=1),
}
SESSION_ARGS = {
    "platform": "{{ params.platform }}",
    "session_id": "{{ params.session_id }}",
    "version_key": "{{ params.version_key }}",
}


def build(dag_id: str, *, deferrable: bool) -> DAG:
    with DAG(
        dag_id=dag_id,
        schedule=None,
        start_date=datetime(2025, 1, 1),
        catchup=False,
        params=PARAMS,
        default_args={"retries": 0},
        dagrun_timeout=timedelta(hours=8),
        tags=["devrev", "example"],
        doc_md=__doc__,
    ) as dag:
        wait = DevRevSessionSensor(
            task_id="wait_for_session",
            poke_interval=POKE_INTERVAL,
            timeout=SENSOR_TIMEOUT,
            deferrable=deferrable,
            **SESSION_ARGS,
        )
        fetch = GetSessionOperator(task_id="get_session", **SESSION_ARGS)

        @task
        def report(session: dict[str, Any]) -> dict[str, Any]:
            """Read the session from XCom and say what a triager would want to know first."""
            if session["type"] == "mobile":
                problems = [name for name in ("is_crash", "is_anr", "rage_tap") if session.get(name)]
            else:
                problems = [name for name in ("rage_click_count", "dead_click_count") if session.get(name)]
            verdict = "needs triage: " + ", ".join(problems) if problems else "looks healthy"
            print(f"Session {session['session_id']} ({session['type']}): {verdict}")
            return {"session_id": session["session_id"], "problems": problems, "session": session}

        wait >> fetch
        report(fetch.output)
    return dag


example_devrev_session = build("example_devrev_session", deferrable=False)
example_devrev_session_deferrable = build("example_devrev_session_deferrable", deferrable=True)
