"""End to end: recordings mapped over a session's recording_ids, and a bulk fetch fed by XCom (dag.test)."""

from __future__ import annotations

import json

import pytest

from tests.e2e.airflow_helpers import load_dag, task_states, xcom

pytestmark = pytest.mark.e2e

VERSION_KEY = "e2e@1.0.0"


def test_recordings_expand_over_recording_ids_and_sessions_come_in_bulk(
    devrev_simulator, airflow_db, monkeypatch, tmp_path
):
    sim = devrev_simulator
    crash = sim.make_session("mobile", platform="android", session_id="e2e-crash", is_crash=True)
    sim.add_session({**crash, "recording_ids": ["rec-1", "rec-2", "rec-3"]}, version_key=VERSION_KEY)
    others = [
        sim.add_session(sim.make_session("mobile", platform="android", session_id=f"e2e-{n}"), version_key=VERSION_KEY)
        for n in range(3)
    ]
    monkeypatch.setenv(
        "DEVREV_E2E_RECORDINGS",
        json.dumps(
            {
                "session_id": "e2e-crash",
                "session_ids": ["e2e-2", "gone", "e2e-0", "e2e-2", "e2e-1"],
                "base": (tmp_path / "recordings").as_uri(),
            }
        ),
    )

    run = load_dag("devrev_e2e_recordings").test()

    states = task_states(run)
    assert set(states.values()) == {"success"}, states
    assert {key for key in states if key.startswith("to_")} == {
        f"{t}[{n}]" for t in ("to_file", "to_xcom") for n in range(3)
    }
    for index, recording_id in enumerate(["rec-1", "rec-2", "rec-3"]):
        body = b"".join(sim.recording_chunks("e2e-crash", VERSION_KEY, recording_id=recording_id))
        [path] = (tmp_path / "recordings").glob(f"*/{index}.json")
        assert path.read_bytes() == body
        assert xcom(run, "to_file", index) == {
            "path": path.as_uri(),
            "bytes": len(body),
            "recording": "mobile_recording",
        }
        assert xcom(run, "to_xcom", index) == json.loads(body)
    # Only the last recording ends with the crash.
    assert xcom(run, "to_xcom", 2)["recording_events_timeline"][-1]["event_name"] == "exception"
    assert xcom(run, "sessions") == [others[2], others[0], others[1]]
