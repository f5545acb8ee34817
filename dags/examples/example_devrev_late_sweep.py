"""
Every day, sweep the crash export of the day before yesterday for sessions uploaded after it was written.

``example_devrev_crash_export`` lists each day two hours after it ends (``settle``): a crash uploaded later
than that (the app reopened days later) is in no file. This DAG's run just after midnight on 2025-06-03 lists
2025-06-01 again, a day after its export, and writes the crashes that export missed to
``2025-06-01/android-crash-sessions.late-1.jsonl`` beside it (``late-2`` the next time, and so on). It reads
the ids the export and the earlier sweeps hold, so no session is in two files; when nothing was missed it
writes nothing. Load the ``late`` files with the day's file.

The paths are the export's (``DEVREV_EXPORT_BASE``, default ``file:///tmp/airflow-devrev-exports``);
``airflow dags test example_devrev_late_sweep 2025-06-03`` sweeps 2025-06-01 once
``airflow dags test example_devrev_crash_export 2025-06-02`` has exported it, against
``python -m airflow_provider_devrev.testing``.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime

try:  # Airflow 3
    from airflow.sdk import DAG
except ImportError:  # Airflow 2.11
    from airflow import DAG  # type: ignore[no-redef]
try:  # Airflow 3.1+
    from airflow.sdk import CronDataIntervalTimetable
except ImportError:
    from airflow.timetables.interval import CronDataIntervalTimetable  # type: ignore[no-redef]

from airflow_provider_devrev.operators.sweep import SweepLateSessionsOperator

EXPORT_BASE = os.environ.get("DEVREV_EXPORT_BASE", "file:///tmp/airflow-devrev-exports").rstrip("/")
VERSION_KEY = "com.acme.shop@5.2.0"
# The day before this run's interval: the export's interval, a day after the export listed it.
DAY = "{{ macros.ds_add(data_interval_start | ds, -1) }}"

with DAG(
    dag_id="example_devrev_late_sweep",
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=datetime(2025, 5, 27, tzinfo=UTC),
    catchup=False,
    # Two sweeps of one day at once could both name their file late-<n>.
    max_active_runs=1,
    default_args={"retries": 2},
    tags=["devrev", "example"],
    doc_md=__doc__,
) as dag:
    for platform in ("android", "ios"):
        SweepLateSessionsOperator(
            task_id=f"sweep_{platform}_crashes",
            platform=platform,
            version_key=VERSION_KEY,
            filters={"is_crash": True},
            # The export's interval and file, exactly: [DAY 00:00, DAY + 1 00:00) UTC.
            created_after=DAY + "T00:00:00+00:00",
            created_before="{{ data_interval_start | ds }}T00:00:00+00:00",
            output_path=EXPORT_BASE + "/" + DAY + "/" + platform + "-crash-sessions.jsonl",
            deferrable=True,
        )
