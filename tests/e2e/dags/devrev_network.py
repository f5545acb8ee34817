"""
The corporate-network DAGs: GetSessionOperator and DevRevSessionSensor in poke, reschedule and deferrable
modes, on ``devrev_default`` (the test points it at an HTTPS simulator, directly or through a real proxy).
The session id comes from the run's conf.
"""

from __future__ import annotations

from datetime import datetime

from airflow.providers.common.compat.sdk import DAG

from airflow_provider_devrev.operators.devrev import GetSessionOperator
from airflow_provider_devrev.sensors.devrev import DevRevSessionSensor

SESSION = {"platform": "android", "session_id": "{{ dag_run.conf['session_id'] }}", "version_key": "network@1"}
DAG_ARGS = {"schedule": None, "start_date": datetime(2025, 1, 1), "catchup": False, "default_args": {"retries": 0}}
# One retry allowed in every mode: a final network error must still end after exactly one attempt.
HOOK = {"max_retries": 1}

with DAG(dag_id="devrev_network_operator", **DAG_ARGS):
    GetSessionOperator(task_id="task", **SESSION, **HOOK)

for mode in ("poke", "reschedule", "deferrable"):
    with DAG(dag_id=f"devrev_network_{mode}", **DAG_ARGS):
        DevRevSessionSensor(
            task_id="task",
            **SESSION,
            max_retries=1,
            poke_interval=0.2,
            timeout=60,
            mode="reschedule" if mode == "reschedule" else "poke",
            deferrable=mode == "deferrable",
        )
