"""
DAGs for ``tests/e2e/test_sensor_modes.py``: a sensor in poke and in reschedule mode whose check gives up on a
``Retry-After`` longer than ``max_retry_wait``, so only the sensor's own interval can honour it.
"""

from __future__ import annotations

from datetime import datetime

from airflow.providers.common.compat.sdk import DAG

from airflow_provider_devrev.sensors.devrev import DevRevSessionSensor

#: A ``Retry-After`` of more than this ends the check at once; the test asks for several times the poke interval.
MAX_RETRY_WAIT = 1.0

for mode in ("poke", "reschedule"):
    with DAG(
        dag_id=f"devrev_e2e_retry_after_{mode}",
        schedule=None,
        start_date=datetime(2025, 1, 1),
        catchup=False,
        default_args={"retries": 0},
    ):
        DevRevSessionSensor(
            task_id="wait_for_session",
            platform="android",
            session_id="{{ dag_run.conf['session_id'] }}",
            version_key="com.acme.shop@5.2.0",
            poke_interval=0.2,
            # Far beyond the test's waits: a deadline near the Retry-After must not be what spaces the checks.
            timeout=60,
            max_retry_wait=MAX_RETRY_WAIT,
            mode=mode,
        )
