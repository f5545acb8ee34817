"""
DAGs for ``tests/e2e/test_worker_connection_lookup.py``: the operator and the sensor (poke and reschedule mode)
on a connection that only the test's secrets backend holds.
"""

from __future__ import annotations

from datetime import datetime

from airflow.providers.common.compat.sdk import DAG

from airflow_provider_devrev.operators.devrev import GetSessionOperator
from airflow_provider_devrev.sensors.devrev import DevRevSessionSensor

CONN_ID = "devrev_vault"
SESSION = {
    "platform": "android",
    "session_id": "{{ dag_run.conf['session_id'] }}",
    "version_key": "com.acme.shop@5.2.0",
    "devrev_conn_id": CONN_ID,
}
DAG_ARGS = {"schedule": None, "start_date": datetime(2025, 1, 1), "catchup": False, "default_args": {"retries": 0}}

with DAG(dag_id="devrev_e2e_vault_operator", **DAG_ARGS):
    GetSessionOperator(task_id="task", **SESSION)

for mode in ("poke", "reschedule"):
    with DAG(dag_id=f"devrev_e2e_vault_{mode}", **DAG_ARGS):
        # One retry per check: a backend failing a few times in a row outlasts a check, and the sensor must wait on.
        DevRevSessionSensor(task_id="task", **SESSION, max_retries=1, poke_interval=0.2, timeout=60, mode=mode)
