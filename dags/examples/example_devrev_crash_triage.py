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

Each run then fetches the recording each crash happened in (a session's last ``recording_ids`` entry) with
``GetSessionRecordingOperator``, mapped over the run's sessions, and hands the triage task the last lines of the
crash log and the last 10 events of the timeline (the taps and screens that led to the crash).

The triage's effect is keyed by session id, so that a repeated event has no second effect: across a
triggerer failover the watch can fire a session again (Airflow commits an event and the watch's saved
position separately), and a repeated session must not open a second ticket. Here the effect is a report
object per session, ``<DEVREV_EXAMPLE_TRIAGE_REPORTS>/<session_id>.json`` (any ``ObjectStoragePath`` URL,
e.g. ``s3://aws_default@bucket/triage``), written only when it does not exist yet; two runs racing on the
same session write the same bytes to the same key. Unset, no report is written.

Against the simulator (``python -m airflow_provider_devrev.testing``) the defaults work as they are;
``DEVREV_EXAMPLE_WATCH_INTERVAL`` shortens the poll for demos and tests. On Airflow 2.11 this file defines no
DAG (Airflow 2 has no event-driven scheduling).
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from typing import Any

try:  # Airflow 3
    from airflow.sdk import DAG, Asset, AssetWatcher, task
except ImportError:  # Airflow 2.11
    AssetWatcher = None

from airflow_provider_devrev.operators.devrev import GetSessionRecordingOperator
from airflow_provider_devrev.triggers.devrev import DevRevNewSessionsTrigger

POLL_INTERVAL = float(os.environ.get("DEVREV_EXAMPLE_WATCH_INTERVAL", "60"))
VERSION_KEY = "com.acme.shop@5.2.0"
#: Where each session's triage report goes, keyed by session id (no report when unset).
TRIAGE_REPORTS = os.environ.get("DEVREV_EXAMPLE_TRIAGE_REPORTS", "")
#: How much of each recording the triage sees: the end of the crash log, and the events just before the crash.
CRASH_LOG_LINES = 20
TIMELINE_EVENTS = 10

if AssetWatcher is not None:
    crash_sessions = Asset(
        name="devrev_android_crash_sessions",
        watchers=[
            AssetWatcher(
                name="devrev_new_android_crashes",
                trigger=DevRevNewSessionsTrigger(
                    platform="android",
                    version_key=VERSION_KEY,
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

        def new_crashes(context: Any) -> list[dict[str, Any]]:
            """The crash sessions of this run's asset events (a slow scheduler may put several in one run)."""
            return [event.extra["payload"]["session"] for event in context["triggering_asset_events"][crash_sessions]]

        @task
        def crash_recordings(**context: Any) -> list[dict[str, str]]:
            """Which recording to fetch per new crash session: the crash ends its last one."""
            return [
                {"session_id": session["session_id"], "recording_id": session["recording_ids"][-1]}
                for session in new_crashes(context)
                if session.get("recording_ids")
            ]

        @task
        def triage(recordings: list[dict[str, Any]], **context: Any) -> list[dict[str, Any]]:
            """
            One report per new crash session: who, which device and build, how the crash log ends and what the
            user did just before. A real DAG would open a ticket, or hand this to a model.
            """
            # By index: iterating a mapped task's outputs probes one past the end, which Airflow logs as an error.
            by_session = {recordings[i]["session_id"]: recordings[i] for i in range(len(recordings))}
            triaged = []
            for session in new_crashes(context):
                device = session.get("device_metadata", {})
                recording = by_session.get(session["session_id"], {})
                log = (recording.get("observability_sessions_log_data") or {}).get("value", "")
                crash_log_tail = log.splitlines()[-CRASH_LOG_LINES:]
                last_events = [
                    {
                        key: event[key]
                        for key in ("timestamp_offset_ms", "event_name", "screen", "object_name")
                        if key in event
                    }
                    for event in recording.get("recording_events_timeline", [])[-TIMELINE_EVENTS:]
                ]
                print(
                    f"Crash {session['session_id']} on {device.get('manufacturer')} {device.get('model')} "
                    f"(app {device.get('app_version')}, OS {device.get('os_version')}), "
                    f"user {session.get('rev_user_id')}"
                )
                print(
                    "  the user's last steps: "
                    + " > ".join(f"{event.get('event_name')}@{event.get('screen', '')}" for event in last_events)
                )
                print("  end of the crash log:\n    " + "\n    ".join(crash_log_tail))
                triaged.append(
                    {
                        "session_id": session["session_id"],
                        "app_version": device.get("app_version"),
                        "crash_log_tail": crash_log_tail,
                        "last_events": last_events,
                    }
                )
            if TRIAGE_REPORTS:
                write_reports(triaged)
            return triaged

        def write_reports(reports: list[dict[str, Any]]) -> None:
            """One object per session id, never a second: the effect of a repeated event is none."""
            from airflow.sdk import ObjectStoragePath

            for report in reports:
                path = ObjectStoragePath(f"{TRIAGE_REPORTS.rstrip('/')}/{report['session_id']}.json")
                if path.exists():
                    print(f"Crash {report['session_id']} was triaged before; its report stays as it is")
                    continue
                if path.protocol in ("", "file", "local"):  # object stores have no folders to make
                    path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(json.dumps(report, sort_keys=True))

        recordings = GetSessionRecordingOperator.partial(
            task_id="get_recording", version_key=VERSION_KEY
        ).expand_kwargs(crash_recordings())
        triage(recordings.output)
