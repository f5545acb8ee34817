"""
DAGs for ``tests/e2e/test_mode_parity.py``: one sensor in each mode, built from the same settings.

The test sets ``DEVREV_PARITY`` (JSON) before parsing: ``sensor`` (``poke_interval``, ``timeout``, ``soft_fail``,
``never_fail``, ``exponential_backoff``) and ``hook`` (``request_timeout``, ``max_retries``, ``max_retry_wait``),
so the three modes differ in nothing but their mode.
"""

from __future__ import annotations

import json
import os
from datetime import datetime

from airflow.providers.common.compat.sdk import DAG

from airflow_provider_devrev.sensors.devrev import DevRevSessionSensor

CFG = json.loads(os.environ.get("DEVREV_PARITY", "{}"))

for mode in ("poke", "reschedule", "deferrable"):
    with DAG(
        dag_id=f"devrev_parity_{mode}",
        schedule=None,
        start_date=datetime(2025, 1, 1),
        catchup=False,
        default_args={"retries": 0},
    ):
        DevRevSessionSensor(
            task_id="wait_for_session",
            platform="android",
            session_id=CFG.get("session_id", "parity-session"),
            version_key="parity@1",
            mode="reschedule" if mode == "reschedule" else "poke",
            deferrable=mode == "deferrable",
            **CFG.get("hook", {}),
            **CFG.get("sensor", {"poke_interval": 1, "timeout": 1}),
        )
