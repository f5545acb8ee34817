"""
The DAG of ``tests/e2e/test_session_links.py``: every task that has the "DevRev session" link, in each way it
runs (the sensor in poke, reschedule and deferrable mode; a recording mapped over a session's recordings; a web
recording, whose platform the task knows from its ``tab_id``; a mobile one told its platform).
"""

from __future__ import annotations

from datetime import datetime

from airflow.providers.common.compat.sdk import DAG

from airflow_provider_devrev.operators.devrev import GetSessionOperator, GetSessionRecordingOperator
from airflow_provider_devrev.sensors.devrev import DevRevSessionSensor

MOBILE = "links-mobile/1"
WEB = "links-web#1"
VERSION_KEY = "com.acme.shop@5.2.0 (beta)"
RECORDINGS = ["rec-1", "rec-2"]
TAB = "tab-1"

with DAG(
    dag_id="devrev_e2e_links",
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    default_args={"retries": 0},
):
    GetSessionOperator(task_id="get", platform="android", session_id=MOBILE, version_key=VERSION_KEY)
    for mode in ("poke", "reschedule", "deferrable"):
        DevRevSessionSensor(
            task_id=f"wait_{mode}",
            platform="web",
            session_id=WEB,
            version_key=VERSION_KEY,
            poke_interval=0.2,
            timeout=60,
            mode="reschedule" if mode == "reschedule" else "poke",
            deferrable=mode == "deferrable",
        )
    GetSessionRecordingOperator.partial(
        task_id="recordings", platform="android", session_id=MOBILE, version_key=VERSION_KEY
    ).expand(recording_id=RECORDINGS)
    GetSessionRecordingOperator(task_id="web_recording", session_id=WEB, version_key=VERSION_KEY, tab_id=TAB)
    # No platform given for a mobile recording: the template's {platform} cannot be filled, so no link.
    GetSessionRecordingOperator(task_id="no_platform", session_id=MOBILE, version_key=VERSION_KEY, recording_id="rec-1")
