"""
Recordings and bulk fetches in real DAG runs: ``GetSessionRecordingOperator`` mapped over a session's
``recording_ids`` (to files and to XCom), and ``GetSessionsOperator`` fed ids by another task's XCom.

The test sets ``DEVREV_E2E_RECORDINGS`` (JSON) before parsing: ``session_id``, ``session_ids``, ``base`` (where
the files go).
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from typing import Any

try:
    from airflow.sdk import DAG, task
except ImportError:  # Airflow 2.11
    from airflow import DAG  # type: ignore[no-redef]
    from airflow.decorators import task  # type: ignore[no-redef]

from airflow_provider_devrev.operators.devrev import (
    GetSessionOperator,
    GetSessionRecordingOperator,
    GetSessionsOperator,
)

CFG = json.loads(os.environ.get("DEVREV_E2E_RECORDINGS", "{}"))
VERSION_KEY = "e2e@1.0.0"
SESSION_ID = CFG.get("session_id", "e2e-session")

with DAG(
    dag_id="devrev_e2e_recordings",
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    default_args={"retries": 0},
):
    session = GetSessionOperator(task_id="session", platform="android", session_id=SESSION_ID, version_key=VERSION_KEY)

    @task
    def recording_ids(found: dict[str, Any]) -> list[str]:
        return list(found["recording_ids"])

    ids = recording_ids(session.output)
    GetSessionRecordingOperator.partial(
        task_id="to_file",
        session_id=SESSION_ID,
        version_key=VERSION_KEY,
        output_path=CFG.get("base", "file:///tmp/devrev-e2e") + "/{{ ds }}/{{ ti.map_index }}.json",
    ).expand(recording_id=ids)
    GetSessionRecordingOperator.partial(task_id="to_xcom", session_id=SESSION_ID, version_key=VERSION_KEY).expand(
        recording_id=ids
    )

    @task
    def wanted() -> list[str]:
        return list(CFG.get("session_ids", []))

    GetSessionsOperator(
        task_id="sessions", platform="android", version_key=VERSION_KEY, session_ids=wanted(), skip_missing=True
    )
