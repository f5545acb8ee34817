"""
The fault-matrix DAGs: one task each, the operator and the sensor in poke and deferrable modes.

The test sets ``DEVREV_MATRIX`` (JSON) before parsing: ``hook`` (timeout, max_retries, max_retry_wait),
``poke_interval`` and ``sensor_timeout``, so every mode runs with the same options. The recording DAGs fetch
a recording to XCom and stream it to ``output_path``.
"""

from __future__ import annotations

import json
import os
from datetime import datetime

from airflow.providers.common.compat.sdk import DAG

from airflow_provider_devrev.operators.devrev import GetSessionOperator, GetSessionRecordingOperator
from airflow_provider_devrev.sensors.devrev import DevRevSessionSensor

CFG = json.loads(os.environ.get("DEVREV_MATRIX", "{}"))
HOOK = CFG.get("hook", {})
SESSION = {"platform": "android", "session_id": CFG.get("session_id", "matrix-session"), "version_key": "matrix@1"}
DAG_ARGS = {"schedule": None, "start_date": datetime(2025, 1, 1), "catchup": False, "default_args": {"retries": 0}}

with DAG(dag_id="devrev_matrix_operator", **DAG_ARGS):
    GetSessionOperator(task_id="task", **SESSION, **HOOK)

for mode in ("poke", "deferrable"):
    with DAG(dag_id=f"devrev_matrix_{mode}", **DAG_ARGS):
        DevRevSessionSensor(
            task_id="task",
            **SESSION,
            request_timeout=HOOK.get("timeout"),
            max_retries=HOOK.get("max_retries"),
            max_retry_wait=HOOK.get("max_retry_wait"),
            poke_interval=CFG.get("poke_interval", 60),
            timeout=CFG.get("sensor_timeout", 6 * 3600),
            deferrable=mode == "deferrable",
        )

for mode, output_path in (("recording_xcom", None), ("recording_file", CFG.get("output_path"))):
    with DAG(dag_id=f"devrev_matrix_{mode}", **DAG_ARGS):
        GetSessionRecordingOperator(
            task_id="task",
            session_id=SESSION["session_id"],
            version_key=SESSION["version_key"],
            recording_id=CFG.get("recording_id", "matrix-recording"),
            output_path=output_path,
            **HOOK,
        )
