"""
Poke, reschedule and deferrable modes reach the same outcome for the same answers from DevRev: the same XCom, the
same exception class, or a skip, with the same number of requests to within one. Each run is real Airflow
(``dag.test()``) against the simulator over HTTP on 127.0.0.1; where Airflow's modes differ, poke mode is the
reference. On Airflow 3.0, ``dag.test()`` cannot run reschedule mode (its fault: the reschedule date arrives as a
str; a strict xfail in test_example_dags.py), so there the property compares poke and deferrable.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest

from tests.e2e.airflow_helpers import load_dag, task_states, xcom

pytestmark = pytest.mark.e2e

GET = "/observability.sessions.get"
SESSION_ID = "parity-session"
VERSION_KEY = "parity@1"
#: The hook's read timeout in these runs, and how long a stalled answer takes: well past it.
READ_TIMEOUT = 0.5
STALL = 3 * READ_TIMEOUT


def _airflow_3_0() -> bool:
    from airflow import __version__

    return __version__.startswith("3.0.")


def modes() -> tuple[str, ...]:
    """The modes ``dag.test()`` can run on this Airflow."""
    return ("poke", "deferrable") if _airflow_3_0() else ("poke", "reschedule", "deferrable")


# As in test_example_dags.py: strict, so the marker goes the day Airflow 3.0 runs it.
SENSOR_MODES = [
    "poke",
    pytest.param(
        "reschedule",
        marks=pytest.mark.xfail(
            _airflow_3_0(), reason="Airflow 3.0 dag.test(): reschedule date arrives as a str", strict=True
        ),
    ),
    "deferrable",
]

#: One scripted answer: the simulator's fault (kind, params), or None for the normal answer (200, the session).
ANSWERS: dict[str, tuple[str, dict[str, Any]] | None] = {
    "200": None,
    "404": ("status", {"status": 404, "body": {"type": "not_found", "message": "not uploaded yet"}}),
    "429": ("rate_limit", {"retry_after": 0.3, "header": None, "body_retry_after": None}),
    "429 Retry-After": ("rate_limit", {"retry_after": 0.3}),
    "500": ("server_error", {"status": 500}),
    "502": ("server_error", {"status": 502}),
    "503": ("server_error", {"status": 503}),
    "401": ("revoked", {}),
    "403": ("status", {"status": 403, "body": {"type": "forbidden", "message": "no access"}}),
    "400": ("status", {"status": 400, "body": {"type": "bad_request", "message": "invalid version_key"}}),
    "stall": ("slow", {"delay": STALL}),
}


@dataclass(frozen=True)
class Outcome:
    """How one run ended: ``state``, and the exception class that failed it or the XCom it pushed."""

    state: str
    detail: Any
    requests: int


@pytest.fixture
def raised(monkeypatch) -> list[str]:
    """The class name of every exception that left the sensor's ``execute`` or ``resume_execution``."""
    from airflow_provider_devrev.sensors.devrev import DevRevSessionSensor

    names: list[str] = []

    def spy(method_name: str) -> None:
        original = getattr(DevRevSessionSensor, method_name)

        def wrapper(self, *args, **kwargs):
            try:
                return original(self, *args, **kwargs)
            except BaseException as err:
                names.append(type(err).__name__)
                raise

        monkeypatch.setattr(DevRevSessionSensor, method_name, wrapper)

    spy("execute")
    spy("resume_execution")
    return names


def run_mode(sim, mode: str, script: list[str], tail: str | None, raised: list[str]) -> Outcome:
    """Script the answers (``tail``: the answer to every request after them), run the mode's DAG once."""
    sim.clear_faults()
    sim.clear_requests()
    for answer in script:
        fault = ANSWERS[answer]
        if fault is None:
            break  # the session is there: nothing after it is asked
        sim.add_fault(fault[0], path=GET, **fault[1])
    tail_fault = ANSWERS[tail] if tail is not None else None
    if tail_fault is not None:
        sim.add_fault(tail_fault[0], path=GET, times=None, **tail_fault[1])
    raised.clear()

    run = load_dag(f"devrev_parity_{mode}").test()

    state = task_states(run)["wait_for_session"]
    # Deferral and rescheduling are control flow, not outcomes.
    errors = [name for name in raised if name not in ("TaskDeferred", "AirflowRescheduleException")]
    detail = xcom(run, "wait_for_session") if state == "success" else (errors[-1] if errors else None)
    return Outcome(state, detail, len(sim.requests_for(path=GET)))


def configure(monkeypatch, *, sensor: dict[str, Any], hook: dict[str, Any] | None = None) -> None:
    hook = {"request_timeout": READ_TIMEOUT, "max_retries": 0, "max_retry_wait": 0.2, **(hook or {})}
    monkeypatch.setenv("DEVREV_PARITY", json.dumps({"session_id": SESSION_ID, "sensor": sensor, "hook": hook}))


@pytest.fixture
def sim(devrev_simulator, airflow_db):
    session = devrev_simulator.make_session("mobile", platform="android", session_id=SESSION_ID)
    devrev_simulator.add_session(session, version_key=VERSION_KEY)
    return devrev_simulator


@pytest.mark.parametrize("tail", ["404", "stall"], ids=["not_uploaded", "never_reached"])
@pytest.mark.parametrize("mode", SENSOR_MODES)
def test_never_fail_lets_the_deadline_fail_the_task_as_poke_mode_does(sim, mode, tail, monkeypatch, raised):
    # never_fail skips a failed check, not the deadline: Airflow's poke mode raises AirflowSensorTimeout at the
    # timeout whatever never_fail says. "never_reached": the sensor's own timeout, naming the network.
    configure(monkeypatch, sensor={"poke_interval": 0.2, "timeout": 1, "never_fail": True})

    outcome = run_mode(sim, mode, [], tail, raised)

    assert (outcome.state, outcome.detail) == ("failed", "AirflowSensorTimeout")
    assert outcome.requests >= 2
