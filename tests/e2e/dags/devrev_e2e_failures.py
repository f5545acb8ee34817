"""Failure-path DAGs for the end-to-end tests: one per (case, sensor mode)."""

from __future__ import annotations

import os
from datetime import datetime

from airflow.providers.common.compat.sdk import DAG

from airflow_provider_devrev.sensors.devrev import DevRevSessionSensor

POKE = float(os.environ.get("DEVREV_E2E_POKE_INTERVAL", "0.2"))

#: How each failure case ends the task, in every mode alike: a timeout fails it, and soft_fail skips it; never_fail
#: (Airflow 2.10+ and 3) skips a failed check but, as in Airflow's poke mode, not the timeout.
CASES: dict[str, dict[str, bool]] = {
    "timeout": {},
    "soft_fail": {"soft_fail": True},
    "never_fail": {"never_fail": True},
}

for mode in ("poke", "reschedule", "deferrable"):
    for case, outcome_args in CASES.items():
        with DAG(
            dag_id=f"devrev_e2e_{case}_{mode}",
            schedule=None,
            start_date=datetime(2025, 1, 1),
            catchup=False,
            default_args={"retries": 0},
        ):
            DevRevSessionSensor(
                task_id="wait_for_session",
                platform="android",
                session_id="{{ dag_run.conf.get('session_id', 'never-uploaded') }}",
                version_key="com.acme.shop@5.2.0",
                poke_interval=POKE,
                timeout=float(os.environ.get("DEVREV_E2E_SENSOR_TIMEOUT", "1")),
                mode="reschedule" if mode == "reschedule" else "poke",
                deferrable=mode == "deferrable",
                **outcome_args,
            )
