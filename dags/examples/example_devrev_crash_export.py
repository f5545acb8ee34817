"""
Every day, export the previous day's crash sessions from DevRev as JSON Lines, one file per platform.

Each run lists the sessions created in its data interval, ``[data_interval_start, data_interval_end)``: the
run that starts just after midnight on 2025-06-02 exports the sessions created on 2025-06-01 (UTC).
A session created exactly at midnight belongs to the next day's file, so reruns and backfills rewrite the
same files and every session lands in exactly one of them.

Sessions are uploaded after they end (a crash usually when the app is next launched), so each export waits
``settle`` (two hours) after midnight before listing: a crash created at 23:50 and uploaded at 00:30 is in
the file of the day it was created. The wait is deferred to the triggerer: no worker slot is held.

The files go to ``DEVREV_EXPORT_BASE`` (default ``file:///tmp/airflow-devrev-exports``); any URL Airflow's
``ObjectStoragePath`` accepts works, e.g. ``s3://aws_default@my-bucket/devrev``. The defaults name the
DevRev simulator's seed data, whose sessions were created in the week up to 2025-06-02, so
``airflow dags test example_devrev_crash_export 2025-06-02`` (a run at that midnight, for the day before) runs
as it is against
``python -m airflow_provider_devrev.testing``.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

try:  # Airflow 3
    from airflow.sdk import DAG, ObjectStoragePath, task
except ImportError:  # Airflow 2.11
    from airflow import DAG  # type: ignore[no-redef]
    from airflow.decorators import task  # type: ignore[no-redef]
    from airflow.io.path import ObjectStoragePath  # type: ignore[no-redef]
try:  # Airflow 3.1+
    from airflow.sdk import CronDataIntervalTimetable
except ImportError:
    from airflow.timetables.interval import CronDataIntervalTimetable  # type: ignore[no-redef]

from airflow_provider_devrev.operators.devrev import ListSessionsOperator

EXPORT_BASE = os.environ.get("DEVREV_EXPORT_BASE", "file:///tmp/airflow-devrev-exports").rstrip("/")
VERSION_KEY = "com.acme.shop@5.2.0"
# Seconds; a deployment test that unpauses this DAG sets it to 0: the run the scheduler makes at once, for
# yesterday, would otherwise wait until 02:00 UTC whenever the test runs between midnight and two.
SETTLE = timedelta(seconds=float(os.environ.get("DEVREV_EXAMPLE_EXPORT_SETTLE", "7200")))

with DAG(
    dag_id="example_devrev_crash_export",
    # Data intervals, not Airflow 3's default CronTriggerTimetable (whose runs have an empty interval).
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=datetime(2025, 5, 26, tzinfo=UTC),
    catchup=False,
    max_active_runs=4,
    default_args={"retries": 2},
    tags=["devrev", "example"],
    doc_md=__doc__,
) as dag:
    exports = [
        ListSessionsOperator(
            task_id=f"export_{platform}_crashes",
            platform=platform,
            version_key=VERSION_KEY,
            filters={"is_crash": True},
            output_path=EXPORT_BASE + "/{{ data_interval_start | ds }}/" + platform + "-crash-sessions.jsonl",
            # Late uploads: list the day at 02:00, waiting on the triggerer rather than in a worker slot.
            settle=SETTLE,
            deferrable=True,
        )
        for platform in ("android", "ios")
    ]

    @task
    def summarize(exported: list[dict[str, Any]]) -> dict[str, Any]:
        """Read the files back (as a warehouse loader would) and count crashes per app version and device."""
        per_version: Counter[str] = Counter()
        per_device: Counter[str] = Counter()
        total = 0
        for export in exported:
            with ObjectStoragePath(export["path"]).open("r", encoding="utf-8") as stream:
                # readline, not iteration: Airflow 2.11's file wrapper is not iterable.
                for line in iter(stream.readline, ""):
                    session = json.loads(line)
                    metadata = session.get("device_metadata", {})
                    per_version[metadata.get("app_version", "?")] += 1
                    per_device[f"{metadata.get('manufacturer', '?')} {metadata.get('model', '?')}"] += 1
                    total += 1
            print(f"{export['path']}: {export['count']} crash sessions")
        print(f"{total} crash sessions; by app version {dict(per_version)}; top devices {per_device.most_common(3)}")
        return {"total": total, "files": [export["path"] for export in exported], "per_version": dict(per_version)}

    summarize([export.output for export in exports])
