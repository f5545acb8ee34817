"""
Start a triage run as soon as DevRev has a new crash session: event-driven scheduling (Airflow 3 only).

An ``AssetWatcher`` runs ``DevRevNewSessionsTrigger`` in the triggerer. Every ``poll_interval`` seconds it
lists the recent crash sessions and, for each one it has not seen before, adds an event to the
``devrev_android_crash_sessions`` asset, with the session in the event's ``extra["payload"]["session"]``.
Each event schedules this DAG.

Read the trigger's docstring for what it guarantees. In short: sessions that existed when the watch started
never fire; each new one fires once while the triggerer runs; on Airflow 3.3+ a triggerer restart may repeat
recent events (at least once), on 3.0-3.2 it forgets what appeared meanwhile (at most once). The events of
one poll are fired 5 s apart so that each can start its own run (Airflow 3.0-3.3 hand an event that arrives
while a run is being queued to the next run only); the task still reads every event, in case several share
a run.

Against the simulator (``python -m airflow_provider_devrev.testing``) the defaults work as they are;
``DEVREV_EXAMPLE_WATCH_INTERVAL`` shortens the poll for demos and tests. On Airflow 2.11 this file defines no
DAG (Airflow 2 has no event-driven scheduling).
"""

from __future__ import annotations

import os
from datetime import datetime
from typing import Any

try:  # Airflow 3
    from airflow.sdk import DAG, Asset, AssetWatcher, task
except ImportError:  # Airflow 2.11
    AssetWatcher = None

from airflow_provider_devrev.triggers.devrev import DevRevNewSessionsTrigger

POLL_INTERVAL = float(os.environ.get("DEVREV_EXAMPLE_WATCH_INTERVAL", "60"))

if AssetWatcher is not None:
    crash_sessions = Asset(
        name="devrev_android_crash_sessions",
        watchers=[
            AssetWatcher(
                name="devrev_new_android_crashes",
                trigger=DevRevNewSessionsTrigger(
                    platform="android",
                    version_key="com.acme.shop@5.2.0",
                    filters={"is_crash": True},
                    poll_interval=POLL_INTERVAL,
                ),
            )
        ],
    )

    with DAG(
        dag_id="example_devrev_crash_triage",
        schedule=[crash_sessions],
        start_date=datetime(2025, 1, 1),
        catchup=False,
        default_args={"retries": 1},
        tags=["devrev", "example"],
        doc_md=__doc__,
    ) as dag:

        @task
        def triage(**context: Any) -> list[dict[str, Any]]:
            """One line per new crash session: who, which device, which build. A real DAG would open a ticket."""
            events = context["triggering_asset_events"][crash_sessions]
            triaged = []
            for event in events:
                session = event.extra["payload"]["session"]
                device = session.get("device_metadata", {})
                print(
                    f"Crash {session['session_id']} on {device.get('manufacturer')} {device.get('model')} "
                    f"(app {device.get('app_version')}, OS {device.get('os_version')}), "
                    f"user {session.get('rev_user_id')}"
                )
                triaged.append({"session_id": session["session_id"], "app_version": device.get("app_version")})
            return triaged

        triage()
