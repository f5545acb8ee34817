"""
The triggerer-failover load of the distributed deployment test: one deferrable ``DevRevSessionSensor`` per
session id in the run's ``session_ids`` param, mapped, all waiting at once in the triggerers.
"""

from __future__ import annotations

import os
from datetime import datetime
from typing import Any

from airflow.sdk import DAG, Param, task

from airflow_provider_devrev.sensors.devrev import DevRevSessionSensor

POKE_INTERVAL = float(os.environ.get("DEVREV_CLUSTER_POKE_INTERVAL", "3"))
SENSOR_TIMEOUT = float(os.environ.get("DEVREV_CLUSTER_SENSOR_TIMEOUT", "900"))

with DAG(
    dag_id="devrev_cluster_sensors",
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    params={
        "version_key": Param("com.acme.shop@5.2.0", type="string"),
        "session_ids": Param([], type="array"),
    },
    # Every sensor at once: deferred tasks hold no worker slot, so only the first checks queue up.
    max_active_tasks=128,
    default_args={"retries": 0},
):

    @task
    def session_ids(params: dict[str, Any] | None = None) -> list[str]:
        return list((params or {})["session_ids"])

    DevRevSessionSensor.partial(
        task_id="wait_for_session",
        platform="android",
        version_key="{{ params.version_key }}",
        poke_interval=POKE_INTERVAL,
        timeout=SENSOR_TIMEOUT,
        deferrable=True,
    ).expand(session_id=session_ids())
