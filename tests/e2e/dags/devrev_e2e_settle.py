"""
A non-deferrable export that must wait ``SETTLE`` after its interval's end, for ``tests/e2e/test_settle_wait.py``
(``airflow dags test``) and ``tests/deployment/test_settle_wait.py`` (a real scheduler).

The interval ends when the task before it ran (or at ``conf["before"]``), so the export's first try finds the
listing too early and reschedules, however long Airflow took to start: the tests count how often the scheduler
then runs it before ``end + SETTLE``. The end is an XCom, so every try of the export reads the same one.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

from airflow.providers.common.compat.sdk import DAG, task

from airflow_provider_devrev.operators.devrev import ListSessionsOperator

DAG_ID = "devrev_e2e_settle"
#: Long enough for a scheduler to have several chances to run the task again too early; a real scheduler, slower
#: to start the export after the task before it, gets more (``DEVREV_E2E_SETTLE_SECONDS``).
SETTLE = timedelta(seconds=float(os.environ.get("DEVREV_E2E_SETTLE_SECONDS", "5")))

with DAG(
    dag_id=DAG_ID,
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    default_args={"retries": 0},
):

    @task
    def interval_end(**context) -> str:
        return context["dag_run"].conf.get("before") or datetime.now(UTC).isoformat()

    interval_end() >> ListSessionsOperator(
        task_id="export",
        platform="android",
        version_key="com.acme.shop@5.2.0",
        created_after="{{ dag_run.conf['after'] }}",
        created_before="{{ ti.xcom_pull(task_ids='interval_end') }}",
        output_path="{{ dag_run.conf['output'] }}",
        settle=SETTLE,
        deferrable=False,
    )
