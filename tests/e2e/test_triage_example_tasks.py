"""
The crash-triage example's tasks against the simulator: what the triage task is handed for a new crash session.

The example is asset-scheduled, which ``dag.test()`` cannot drive; ``tests/deployment/test_event_driven.py`` runs it
in a real deployment (Airflow 3.3). Here its task callables run with the asset events a run would get.
"""

from __future__ import annotations

import json
import runpy
import types
from pathlib import Path
from typing import Any

import airflow

from airflow_provider_devrev.operators.devrev import GetSessionRecordingOperator

EXAMPLE = Path(__file__).resolve().parents[2] / "dags" / "examples" / "example_devrev_crash_triage.py"
VERSION_KEY = "com.acme.shop@5.2.0"


def _load_example() -> dict[str, Any] | None:
    """The example's globals; None on Airflow 2, after checking that it loads there and defines no DAG."""
    example = runpy.run_path(str(EXAMPLE))
    if airflow.__version__.startswith("2."):
        # Airflow 2 has no event-driven scheduling: the example must load cleanly and define nothing to schedule
        # (as its docstring says), rather than fail the user's DAG folder.
        assert example.get("dag") is None
        assert example["AssetWatcher"] is None
        return None
    return example


def test_triage_gets_the_end_of_the_crash_log_and_the_last_10_timeline_events(devrev_simulator):
    example = _load_example()
    if example is None:
        return
    dag, asset = example["dag"], example["crash_sessions"]
    sim = devrev_simulator
    crashes = [
        sim.add_session(
            sim.make_session("mobile", platform=p, is_crash=True, session_id=f"crash-{p}"), version_key=VERSION_KEY
        )
        for p in ("android", "ios")
    ]
    events = _Events(asset, [types.SimpleNamespace(extra={"payload": {"session": s}}) for s in crashes])

    wanted = dag.task_dict["crash_recordings"].python_callable(triggering_asset_events=events)
    assert wanted == [{"session_id": s["session_id"], "recording_id": s["recording_ids"][-1]} for s in crashes]
    recordings = [GetSessionRecordingOperator(task_id="r", version_key=VERSION_KEY, **kw).execute({}) for kw in wanted]
    triaged = dag.task_dict["triage"].python_callable(recordings, triggering_asset_events=events)

    assert [t["session_id"] for t in triaged] == ["crash-android", "crash-ios"]
    for report, recording in zip(triaged, recordings, strict=True):
        log = recording["observability_sessions_log_data"]["value"].splitlines()
        assert report["crash_log_tail"] == log[-20:]
        timeline = recording["recording_events_timeline"]
        assert [e["event_name"] for e in report["last_events"]] == [e["event_name"] for e in timeline[-10:]]
        assert report["last_events"][-1]["event_name"] == "exception"


def test_a_repeated_crash_session_has_no_second_effect(devrev_simulator, tmp_path, monkeypatch):
    # The watch can fire a session again across a triggerer failover: the report, keyed by session id, is
    # written by the first triage only, and a second triage of the same session leaves it as it is.
    reports = tmp_path / "triage"
    monkeypatch.setenv("DEVREV_EXAMPLE_TRIAGE_REPORTS", f"file://{reports}")
    example = _load_example()
    if example is None:
        return
    dag, asset = example["dag"], example["crash_sessions"]
    sim = devrev_simulator
    crash = sim.add_session(
        sim.make_session("mobile", platform="android", is_crash=True, session_id="crash-twice"), version_key=VERSION_KEY
    )
    events = _Events(asset, [types.SimpleNamespace(extra={"payload": {"session": crash}})])
    recordings = [
        GetSessionRecordingOperator(task_id="r", version_key=VERSION_KEY, **kw).execute({})
        for kw in dag.task_dict["crash_recordings"].python_callable(triggering_asset_events=events)
    ]

    first = dag.task_dict["triage"].python_callable(recordings, triggering_asset_events=events)
    report = reports / "crash-twice.json"
    assert json.loads(report.read_text()) == json.loads(json.dumps(first[0]))
    report.write_text('{"session_id": "crash-twice", "ticket": "ACME-1"}')  # what the first effect left
    second = dag.task_dict["triage"].python_callable(recordings, triggering_asset_events=events)

    assert second == first  # the run still reports what it triaged ...
    assert json.loads(report.read_text()) == {"session_id": "crash-twice", "ticket": "ACME-1"}  # ... once
    assert sorted(p.name for p in reports.iterdir()) == ["crash-twice.json"]


class _Events:
    """``triggering_asset_events`` as a run of the asset gets it: looked up by the asset (not hashable on 3.0)."""

    def __init__(self, asset: object, events: list[object]) -> None:
        self.asset, self.events = asset, events

    def __getitem__(self, key: object) -> list[object]:
        assert key is self.asset
        return self.events
