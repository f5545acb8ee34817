"""
The fault matrix: the same scripted faults against GetSessionOperator and DevRevSessionSensor in poke and
deferrable modes, each a real Airflow run (``dag.test()``) against the simulator over HTTP on 127.0.0.1.

Waits (the hook's retries, the sensor's pokes, the trigger's polls, the simulator's "appears after T")
run on one fake clock, so hours of waiting take no time, and the clock records every wait: that proves
there is no retry without a wait and no poll loop without a sleep. Each case asserts the outcome and the
exact number of requests the simulator saw.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from airflow_provider_devrev.testing import DevRevSimulator
from tests.e2e.airflow_helpers import load_dag, task_states
from tests.fakes import FakeClock
from tests.reliability.conftest import requests_text

pytestmark = pytest.mark.e2e

GET = "/observability.sessions.get"
SESSION_ID = "matrix-session"
VERSION_KEY = "matrix@1"
POKE = 60.0
MODES = ("operator", "poke", "deferrable")


@dataclass(frozen=True)
class Expect:
    """What one mode must end with: the task state, the requests DevRev saw, text the run must log."""

    state: str
    requests: int
    text: str = ""


@dataclass(frozen=True)
class Case:
    """
    One fault. ``setup(sim, clock, mode)`` scripts it; sensors first meet one 404 (the session "is not uploaded
    yet"), so in deferrable mode the fault reaches the trigger, not the worker's first check.
    """

    fault: str
    setup: Callable[[DevRevSimulator, FakeClock, str], Any]
    expect: dict[str, Expect]
    hook: dict[str, Any] = field(default_factory=lambda: {"max_retries": 3})
    poke_interval: float = POKE
    sensor_timeout: float = 6 * 3600
    not_yet_first: bool = True
    session_appears_after: float | None = None
    session_uploaded: bool = True


def sensors(state: str, requests: int, text: str = "") -> dict[str, Expect]:
    return {"poke": Expect(state, requests, text), "deferrable": Expect(state, requests, text)}


def _stop_then_restart(sim: DevRevSimulator, clock: FakeClock, mode: str) -> None:
    """Operator: refused from the start, back after the first retry wait. Sensors: down during check 2."""
    if mode == "operator":
        sim.stop()
        clock.at(0.1, sim.start)
    else:
        clock.at(1, sim.stop)
        clock.at(POKE + 30, sim.start)


CASES = [
    Case(
        "429, Retry-After in seconds",
        lambda sim, clock, mode: sim.add_fault("rate_limit", retry_after=30),
        {"operator": Expect("success", 2), **sensors("success", 3)},
    ),
    Case(
        "429, Retry-After as an HTTP date",
        lambda sim, clock, mode: sim.add_fault("rate_limit", retry_after=30, header="http-date"),
        {"operator": Expect("success", 2), **sensors("success", 3)},
    ),
    Case(
        "429, only the body's retry_after",
        lambda sim, clock, mode: sim.add_fault("rate_limit", retry_after=30, header=None, body_retry_after=30),
        {"operator": Expect("success", 2), **sensors("success", 3)},
    ),
    Case(
        "429, Retry-After longer than max_retry_wait",
        lambda sim, clock, mode: sim.add_fault("rate_limit", retry_after=3600),
        {"operator": Expect("failed", 1, "wait 3600 s"), **sensors("success", 3)},
        hook={"max_retries": 3, "max_retry_wait": 60},
    ),
    Case(
        "burst of 500, 502, 503, 504 within the retry budget",
        lambda sim, clock, mode: [sim.add_fault("server_error", status=s) for s in (500, 502, 503, 504)],
        {"operator": Expect("success", 5), **sensors("success", 6)},
        hook={"max_retries": 5},
    ),
    Case(
        "persistent 500 (cleared after 90 s for sensors)",
        lambda sim, clock, mode: (
            sim.add_fault("server_error", status=500, reference_id="ref-matrix-500", times=None),
            clock.at(90, sim.clear_faults),
        ),
        {"operator": Expect("failed", 4, "ref-matrix-500"), **sensors("success", 6)},
    ),
    Case(
        "persistent HTML 502 from a proxy (cleared after 90 s for sensors)",
        lambda sim, clock, mode: (
            sim.add_fault("server_error", status=502, times=None),
            clock.at(90, sim.clear_faults),
        ),
        {"operator": Expect("failed", 4, "DevRevUnexpectedResponseError"), **sensors("success", 6)},
    ),
    Case(
        "dropped connections",
        lambda sim, clock, mode: sim.add_fault("drop", times=2),
        {"operator": Expect("success", 3), **sensors("success", 4)},
    ),
    Case(
        "connection refused: simulator stopped, restarted mid-wait",
        _stop_then_restart,
        {"operator": Expect("success", 1), **sensors("success", 2)},
    ),
    Case(
        "read timeouts: answers slower than the 0.3 s read timeout",
        lambda sim, clock, mode: sim.add_fault("slow", delay=1.5, times=2),
        {"operator": Expect("success", 3), **sensors("success", 4)},
        hook={"max_retries": 3, "timeout": 0.3},
    ),
    Case(
        "persistent read timeouts (cleared after 90 s for sensors)",
        lambda sim, clock, mode: (sim.add_fault("slow", delay=1.5, times=None), clock.at(90, sim.clear_faults)),
        {"operator": Expect("failed", 2, "0.3 s read timeout"), **sensors("success", 4)},
        hook={"max_retries": 1, "timeout": 0.3},
    ),
    Case(
        "truncated JSON 200",
        lambda sim, clock, mode: sim.add_fault("truncated_json"),
        {"operator": Expect("failed", 1, "DevRevUnexpectedResponseError"), **sensors("failed", 2)},
    ),
    Case(
        "token revoked mid-wait (401)",
        lambda sim, clock, mode: sim.add_fault("revoked"),
        {"operator": Expect("failed", 1, "token_revoked"), **sensors("failed", 2, "token_revoked")},
    ),
    Case(
        "session uploaded 3 h later (poke_interval 300 s)",
        lambda sim, clock, mode: None,
        # The operator does not wait: 404 fails it. The sensors check at 0, 300, ..., 10800 s.
        {"operator": Expect("failed", 1, "not_found"), **sensors("success", 3 * 3600 // 300 + 1)},
        poke_interval=300,
        not_yet_first=False,
        session_appears_after=3 * 3600,
    ),
    Case(
        "session never uploaded, sensor timeout 2 h (poke_interval 300 s)",
        lambda sim, clock, mode: None,
        # Checks at 0, 300, ..., 7200 s (the deadline), and one just after it, at 7201 s, which times out.
        {"operator": Expect("failed", 1, "not_found"), **sensors("failed", 2 * 3600 // 300 + 2, "timeout")},
        poke_interval=300,
        sensor_timeout=2 * 3600,
        not_yet_first=False,
        session_uploaded=False,
    ),
]


@pytest.fixture
def fake_clock(monkeypatch) -> FakeClock:
    """One fake clock for the hook's retries, both sensor modes' waits and the trigger's polls."""
    import airflow_provider_devrev.hooks.devrev as hook_module
    import airflow_provider_devrev.sensors.devrev as sensor_module
    from airflow_provider_devrev._compat import BaseSensorOperator
    from airflow_provider_devrev.hooks import _rate_gate
    from airflow_provider_devrev.triggers.devrev import DevRevSessionTrigger

    clock = FakeClock()
    monkeypatch.setattr(hook_module, "time", clock)
    monkeypatch.setattr(sensor_module, "time", clock)
    # BaseSensorOperator's poke loop: time.monotonic() for its timeout, time.sleep() between pokes.
    monkeypatch.setattr(sys.modules[BaseSensorOperator.__module__], "time", clock)
    monkeypatch.setattr(DevRevSessionTrigger, "clock", staticmethod(clock.time))
    monkeypatch.setattr(DevRevSessionTrigger, "sleep", staticmethod(clock.async_sleep))
    # The shared rate limit's pauses run on the same clock, or a Retry-After would outlast the fake hours.
    monkeypatch.setattr(_rate_gate, "now", clock.time)
    return clock


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case", CASES, ids=[case.fault for case in CASES])
def test_fault_matrix(case: Case, mode: str, fake_clock, airflow_db, monkeypatch, capsys, caplog, record):
    expected = case.expect[mode]
    with DevRevSimulator(clock=fake_clock.monotonic) as sim:
        monkeypatch.setenv("AIRFLOW_CONN_DEVREV_DEFAULT", sim.connection_json())
        monkeypatch.setenv(
            "DEVREV_MATRIX",
            json.dumps(
                {
                    "hook": case.hook,
                    "poke_interval": case.poke_interval,
                    "sensor_timeout": case.sensor_timeout,
                    "session_id": SESSION_ID,
                }
            ),
        )
        session = sim.make_session("mobile", platform="android", session_id=SESSION_ID)
        if case.session_uploaded:
            sim.add_session(session, version_key=VERSION_KEY, appear_after_seconds=case.session_appears_after)
        if case.not_yet_first and mode != "operator":
            sim.add_fault("status", status=404, body={"type": "not_found", "message": "not uploaded yet"})
        case.setup(sim, fake_clock, mode)

        run = load_dag(f"devrev_matrix_{mode}").test()
        output = capsys.readouterr()
        state = task_states(run)["task"]
        requests = len(sim.requests_for(path=GET))
        returned = _xcom_or_none(run) if state == "success" else None

    record(
        case.fault,
        mode,
        f"{expected.state}, {requests_text(expected.requests)}",
        f"{state}, {requests_text(requests)}",
        requests,
        survived=(state, requests) == (expected.state, expected.requests),
    )
    assert (state, requests) == (expected.state, expected.requests)
    if expected.text:
        # Airflow 3 logs the task's failure through structlog (stdout), Airflow 2.11 through stdlib logging.
        assert expected.text in output.out + output.err + caplog.text
    if state == "success":
        assert returned == session
    # No request storm: every request after the first followed a real (fake-clock) wait.
    assert all(wait > 0 for wait in fake_clock.sleeps)
    assert len(fake_clock.sleeps) >= requests - 1


def _xcom_or_none(run: Any) -> Any:
    from tests.e2e.airflow_helpers import xcom

    return xcom(run, "task")


# -- GetSessionRecordingOperator: the same faults on sessions.data.get, to XCom and streamed to a file --------

DATA = "/observability.sessions.data.get"
RECORDING_ID = "matrix-recording"
RECORDING_MODES = ("recording_xcom", "recording_file")


@dataclass(frozen=True)
class RecordingCase:
    """One fault against the recording operator; ``large`` makes the recording 3 MB, so it streams in chunks."""

    fault: str
    setup: Callable[[DevRevSimulator], Any]
    state: str
    requests: int
    text: str = ""
    hook: dict[str, Any] = field(default_factory=lambda: {"max_retries": 3})
    large: bool = False


RECORDING_CASES = [
    RecordingCase("429, Retry-After in seconds", lambda sim: sim.add_fault("rate_limit", retry_after=30), "success", 2),
    RecordingCase(
        "429, Retry-After longer than max_retry_wait",
        lambda sim: sim.add_fault("rate_limit", retry_after=3600),
        "failed",
        1,
        "wait 3600 s",
        hook={"max_retries": 3, "max_retry_wait": 60},
    ),
    RecordingCase(
        "burst of 500, 502, 503, 504 within the retry budget",
        lambda sim: [sim.add_fault("server_error", status=s) for s in (500, 502, 503, 504)],
        "success",
        5,
        hook={"max_retries": 5},
    ),
    RecordingCase(
        "persistent 500",
        lambda sim: sim.add_fault("server_error", status=500, reference_id="ref-matrix-rec", times=None),
        "failed",
        4,
        "ref-matrix-rec",
    ),
    RecordingCase("dropped connections", lambda sim: sim.add_fault("drop", times=2), "success", 3),
    RecordingCase(
        "read timeouts: answers slower than the 0.3 s read timeout",
        lambda sim: sim.add_fault("slow", delay=1.5, times=2),
        "success",
        3,
        hook={"max_retries": 3, "timeout": 0.3},
    ),
    RecordingCase(
        "truncated JSON 200",
        lambda sim: sim.add_fault("truncated_json"),
        "failed",
        1,
        "DevRevUnexpectedResponseError",
    ),
    RecordingCase(
        "body cut mid-stream (3 MB recording, cut after 1 MB)",
        lambda sim: sim.add_fault("cut_body", after_bytes=1_000_000),
        "failed",
        1,
        "incomplete_body",
        large=True,
    ),
    RecordingCase(
        "body cut before its first chunk arrived",
        lambda sim: sim.add_fault("cut_body", after_bytes=100),
        "success",
        2,
    ),
    RecordingCase(
        "recording not found (404)",
        lambda sim: sim.add_fault("status", status=404, body={"type": "not_found", "message": "no such recording"}),
        "failed",
        1,
        "not_found",
    ),
]


@pytest.mark.parametrize("mode", RECORDING_MODES)
@pytest.mark.parametrize("case", RECORDING_CASES, ids=[case.fault for case in RECORDING_CASES])
def test_fault_matrix_recording(
    case: RecordingCase, mode: str, fake_clock, airflow_db, monkeypatch, capsys, caplog, record, tmp_path
):
    target = tmp_path / "recordings" / "matrix.json"
    with DevRevSimulator(clock=fake_clock.monotonic) as sim:
        monkeypatch.setenv("AIRFLOW_CONN_DEVREV_DEFAULT", sim.connection_json())
        config = {"hook": case.hook, "session_id": SESSION_ID, "recording_id": RECORDING_ID, "output_path": str(target)}
        monkeypatch.setenv("DEVREV_MATRIX", json.dumps(config))
        session = sim.make_session("mobile", platform="android", session_id=SESSION_ID, recording_ids=[RECORDING_ID])
        sim.add_session(session, version_key=VERSION_KEY)
        if case.large:
            sim.inflate_recording(SESSION_ID, 3_000_000)
        expected_body = b"".join(sim.recording_chunks(SESSION_ID, VERSION_KEY, recording_id=RECORDING_ID))
        case.setup(sim)

        run = load_dag(f"devrev_matrix_{mode}").test()
        output = capsys.readouterr()
        state = task_states(run)["task"]
        requests = len(sim.requests_for(path=DATA))
        returned = _xcom_or_none(run) if state == "success" else None

    record(
        case.fault,
        mode.replace("_", " to "),
        f"{case.state}, {requests_text(case.requests)}",
        f"{state}, {requests_text(requests)}",
        requests,
        survived=(state, requests) == (case.state, case.requests),
    )
    assert (state, requests) == (case.state, case.requests)
    if case.text:
        assert case.text in output.out + output.err + caplog.text
    if mode == "recording_file":
        # Published whole or not at all.
        published = sorted(p.name for p in target.parent.iterdir()) if target.parent.exists() else []
        assert published == (["matrix.json"] if state == "success" else [])
        if state == "success":
            assert target.read_bytes() == expected_body
            assert returned == {"path": target.as_uri(), "bytes": len(expected_body), "recording": "mobile_recording"}
    elif state == "success":
        assert returned == json.loads(expected_body)
    assert all(wait > 0 for wait in fake_clock.sleeps)
    assert len(fake_clock.sleeps) >= requests - 1
