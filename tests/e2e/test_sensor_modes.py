"""
What the sensor promises in every mode, tried against real Airflow (``dag.test``) and the simulator over HTTP:
a ``Retry-After`` spaces the checks of poke and reschedule mode too, and ``soft_fail`` skips a failure (a 401),
not only a timeout.
"""

from __future__ import annotations

import time

import pytest

from tests.e2e.airflow_helpers import load_dag, task_states, xcom

pytestmark = pytest.mark.e2e

GET = "/observability.sessions.get"
VERSION = "com.acme.shop@5.2.0"
#: Far more than the DAGs' poke interval (0.2 s), their max_retry_wait (1 s) and dag.test()'s own latency in
#: rescheduling a task (about 1.4 s measured, with the Retry-After ignored).
RETRY_AFTER = 3.0
UNAVAILABLE = {"type": "service_unavailable", "message": "try again later"}


@pytest.fixture
def sim(devrev_simulator, airflow_db):
    return devrev_simulator


@pytest.mark.parametrize("mode", ["poke", "reschedule"])
@pytest.mark.parametrize(
    ("fault", "params"),
    [
        ("rate_limit", {"retry_after": RETRY_AFTER}),
        ("status", {"status": 503, "body": UNAVAILABLE, "headers": {"Retry-After": str(RETRY_AFTER)}}),
    ],
    ids=["429", "503"],
)
def test_the_next_check_comes_no_sooner_than_a_retry_after(sim, mode, fault, params):
    session = sim.add_session(sim.make_session("mobile", platform="android"), version_key=VERSION)
    sim.add_fault(fault, path=GET, **params)

    run = load_dag(f"devrev_e2e_retry_after_{mode}").test(run_conf={"session_id": session["session_id"]})

    assert task_states(run) == {"wait_for_session": "success"}
    assert xcom(run, "wait_for_session") == session
    asked, found = sim.requests_for(path=GET)
    assert (asked.status, found.status) == (int(params.get("status", 429)), 200)
    # The simulator's own clock, at each request's arrival: what DevRev would see.
    waited = found.time - asked.time
    assert waited >= RETRY_AFTER, f"checked again {waited:.2f} s after the {asked.status}"


@pytest.mark.parametrize("mode", ["poke", "reschedule", "deferrable"])
# Deferrable: on the worker, or in the trigger. The 401 ends the wait at the second check at the latest, so
# reschedule mode runs on Airflow 3.0 too: its dag.test() fails only a rescheduled check that does not end the
# wait (the reschedule date arrives as a str; see test_example_dags.py). The Retry-After cases above end so too.
@pytest.mark.parametrize("not_found_first", [0, 1], ids=["at_the_first_check", "at_the_second_check"])
def test_soft_fail_skips_a_401_in_every_mode(sim, mode, not_found_first, monkeypatch):
    # A deadline a minute away: only the 401 can end this wait within the test.
    monkeypatch.setenv("DEVREV_E2E_SENSOR_TIMEOUT", "60")
    if not_found_first:
        sim.add_fault("status", status=404, body={"type": "not_found"}, times=not_found_first, path=GET)
    sim.add_fault("revoked", path=GET)
    started = time.monotonic()

    run = load_dag(f"devrev_e2e_soft_fail_{mode}").test(run_conf={"session_id": "never-uploaded"})

    assert task_states(run) == {"wait_for_session": "skipped"}
    statuses = [r.status for r in sim.requests_for(path=GET)]
    assert statuses == [404] * not_found_first + [401], "nothing is sent after the 401"
    assert time.monotonic() - started < 30, "skipped for the 401, not at the deadline"
