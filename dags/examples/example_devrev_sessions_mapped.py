"""
Fetch a list of DevRev sessions in parallel with dynamic task mapping, then summarize them in one task.

The ``session_ids`` param defaults to sessions of the DevRev simulator's seed data, so the DAG runs as it is
against ``python -m airflow_provider_devrev.testing``.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

try:  # Airflow 3
    from airflow.sdk import DAG, Param, task
except ImportError:  # Airflow 2.11
    from airflow import DAG  # type: ignore[no-redef]
    from airflow.decorators import task  # type: ignore[no-redef]
    from airflow.models.param import Param  # type: ignore[no-redef]

from airflow_provider_devrev.operators.devrev import GetSessionOperator

with DAG(
    dag_id="example_devrev_sessions_mapped",
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    params={
        "platform": Param("android", enum=["android", "ios", "web"]),
        "version_key": Param("com.acme.shop@5.2.0", type="string", minLength=1),
        "session_ids": Param(
            ["sim-android-crash-0001", "sim-android-anr-0001", "sim-android-ok-0001"],
            type="array",
            minItems=1,
        ),
    },
    default_args={"retries": 0},
    tags=["devrev", "example"],
    doc_md=__doc__,
) as dag:

    @task
    def session_ids(params: dict[str, Any] | None = None) -> list[str]:
        return list((params or {})["session_ids"])

    sessions = GetSessionOperator.partial(
        task_id="get_session",
        platform="{{ params.platform }}",
        version_key="{{ params.version_key }}",
        max_active_tis_per_dagrun=8,
    ).expand(session_id=session_ids())

    @task
    def summarize(sessions: list[dict[str, Any]]) -> dict[str, Any]:
        """One row for the whole batch: how many sessions, and how many of each problem."""
        sessions = list(sessions)
        problems: Counter[str] = Counter()
        for session in sessions:
            problems.update(name for name in ("is_crash", "is_anr", "rage_tap") if session.get(name))
        summary = {
            "sessions": len(sessions),
            "session_ids": [s["session_id"] for s in sessions],
            "problems": dict(problems),
            "total_duration_ms": sum(s.get("session_duration_ms", 0) for s in sessions),
        }
        print(f"Summary: {summary}")
        return summary

    summarize(sessions.output)
