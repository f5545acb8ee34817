"""Wait for one DevRev session, fetch it, and triage it downstream (the README's DAG)."""

from __future__ import annotations

import os
from datetime import datetime

try:  # Airflow 3
    from airflow.sdk import DAG, task
except ImportError:  # Airflow 2.11
    from airflow import DAG  # type: ignore[no-redef]
    from airflow.decorators import task  # type: ignore[no-redef]

from airflow_provider_devrev.operators.devrev import GetSessionOperator
from airflow_provider_devrev.sensors.devrev import DevRevSessionSensor

# A real upload takes minutes; a test shortens the wait through the environment.
POKE_INTERVAL = float(os.environ.get("TRIAGE_POKE_INTERVAL", "60"))

with DAG(
    "triage_session",
    schedule=None,
    start_date=datetime(2025, 1, 1),
    params={"session_id": "sim-android-crash-0001"},
):
    args = {
        "platform": "android",
        "session_id": "{{ params.session_id }}",
        "version_key": "com.acme.shop@5.2.0",
    }
    wait = DevRevSessionSensor(
        task_id="wait_for_session", deferrable=True, poke_interval=POKE_INTERVAL, timeout=6 * 3600, **args
    )
    fetch = GetSessionOperator(task_id="get_session", **args)

    @task
    def triage(session: dict) -> str:
        if session["is_crash"]:
            return f"crash on {session['device_metadata']['model']}"
        return "no crash"

    wait >> fetch
    triage(fetch.output)
