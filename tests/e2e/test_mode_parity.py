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
from hypothesis import HealthCheck, Phase, given
from hypothesis import strategies as st

from tests.e2e.airflow_helpers import load_dag, task_states, xcom
from tests.properties import sized

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
RESCHEDULE_ON_3_0 = pytest.mark.xfail(
    _airflow_3_0(), reason="Airflow 3.0 dag.test(): reschedule date arrives as a str", strict=True
)

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
    return devrev_simulator


@pytest.fixture
def session(sim) -> dict[str, Any]:
    """The session every run waits for: uploaded, so the normal answer is a 200 with it."""
    return sim.add_session(
        sim.make_session("mobile", platform="android", session_id=SESSION_ID), version_key=VERSION_KEY
    )


@pytest.mark.parametrize("tail", ["404", "stall"], ids=["not_uploaded", "never_reached"])
@pytest.mark.parametrize("mode", ["poke", "reschedule", "deferrable"])
def test_never_fail_lets_the_deadline_fail_the_task_as_poke_mode_does(
    sim, session, mode, tail, monkeypatch, raised, request
):
    # never_fail skips a failed check, not the deadline: Airflow's poke mode raises AirflowSensorTimeout at the
    # timeout whatever never_fail says. "never_reached": the sensor's own timeout, naming the network. Both
    # reschedule at least once before their deadline, which Airflow 3.0's dag.test() cannot run.
    if mode == "reschedule":
        request.applymarker(RESCHEDULE_ON_3_0)
    # A timeout of a few checks even on a loaded machine: the first check alone must not outlast it.
    configure(monkeypatch, sensor={"poke_interval": 0.2, "timeout": 3, "never_fail": True})

    outcome = run_mode(sim, mode, [], tail, raised)

    assert (outcome.state, outcome.detail) == ("failed", "AirflowSensorTimeout")
    assert outcome.requests >= 2


# -- the property ------------------------------------------------------------------------------------------

#: Answers after which the sensor keeps waiting, and answers that end the wait at once.
NON_FINAL = ("404", "429", "429 Retry-After", "500", "502", "503", "stall")
FINAL = ("401", "403", "400")


@dataclass(frozen=True)
class Scenario:
    """
    A script of answers and sensor settings. ``ending``: ``found`` (the script ends with a 200), ``final`` (with a
    400, 401 or 403) or ``deadline`` (``tail`` answers every request after the script, until the timeout).
    """

    ending: str
    script: tuple[str, ...]
    tail: str | None
    sensor: dict[str, Any]
    max_retries: int

    def expected(self) -> tuple[str, Any]:
        """Poke mode's outcome (Airflow's semantics): state, and the exception class that failed the task."""
        skip_failure = self.sensor.get("soft_fail") or self.sensor.get("never_fail")
        if self.ending == "final":
            return ("skipped", "AirflowSkipException") if skip_failure else ("failed", "AirflowFailException")
        if self.ending == "deadline":
            # never_fail skips a failed check, never the deadline: only soft_fail skips a timeout.
            if self.sensor.get("soft_fail"):
                return ("skipped", "AirflowSkipException")
            return ("failed", "AirflowSensorTimeout")
        return ("success", None)


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    ending = draw(st.sampled_from(["found", "final", "deadline"]))
    prefix = tuple(draw(st.lists(st.sampled_from(NON_FINAL), max_size=2)))
    sensor: dict[str, Any] = {"exponential_backoff": draw(st.booleans())}
    sensor.update(draw(st.sampled_from([{}, {"soft_fail": True}, {"never_fail": True}])))
    if ending == "deadline":
        # dag.test() looks for a rescheduled task once a second: with a shorter poke_interval reschedule mode would
        # check fewer times before the deadline than poke mode, for dag.test's sake, not the sensor's.
        sensor.update(poke_interval=draw(st.sampled_from([1, 2])), timeout=draw(st.sampled_from([1, 2])))
        return Scenario(ending, prefix, draw(st.sampled_from(NON_FINAL)), sensor, draw(st.sampled_from([0, 1])))
    # A deadline far beyond the script: the last answer, not the clock, ends these runs.
    sensor.update(poke_interval=draw(st.sampled_from([0.2, 0.5])), timeout=60)
    last = "200" if ending == "found" else draw(st.sampled_from(FINAL))
    return Scenario(ending, (*prefix, last), None, sensor, draw(st.sampled_from([0, 1])))


NEVER_FAIL_AT_THE_DEADLINE = Scenario(
    "deadline", (), "404", {"exponential_backoff": False, "never_fail": True, "poke_interval": 1, "timeout": 1}, 0
)
#: Every check stalls past the read timeout: the sensor's own timeout, saying DevRev was never reached.
NEVER_FAIL_NEVER_REACHED = Scenario(
    "deadline", (), "stall", {"exponential_backoff": False, "never_fail": True, "poke_interval": 1, "timeout": 1}, 0
)

#: Exponential_backoff, both 429s, a stall and a 403 inside a script, never_fail on a final answer.
BACKOFF_THROUGH_429_AND_STALL_TO_403 = Scenario(
    "final",
    ("429 Retry-After", "stall", "403"),
    None,
    {"exponential_backoff": True, "never_fail": True, "poke_interval": 0.2, "timeout": 60},
    1,
)
FOUND_AFTER_429_AND_502 = Scenario(
    "found", ("429", "502", "200"), None, {"exponential_backoff": False, "poke_interval": 0.5, "timeout": 60}, 0
)
SOFT_FAIL_AT_THE_DEADLINE = Scenario(
    "deadline", ("503",), "429", {"exponential_backoff": True, "soft_fail": True, "poke_interval": 1, "timeout": 2}, 0
)


#: The cases make test always runs, each its own test (so that pytest-xdist spreads them): between them they
#: cover every answer and option the property draws from (found missing from the fixed seed's draws in review).
PINNED = {
    "never_fail_at_the_deadline": NEVER_FAIL_AT_THE_DEADLINE,
    "never_fail_never_reached": NEVER_FAIL_NEVER_REACHED,
    "backoff_through_429_and_stall_to_403": BACKOFF_THROUGH_429_AND_STALL_TO_403,
    "found_after_429_and_502": FOUND_AFTER_429_AND_502,
    "soft_fail_at_the_deadline": SOFT_FAIL_AT_THE_DEADLINE,
}


@pytest.mark.parametrize("scenario", PINNED.values(), ids=PINNED)
def test_every_mode_reaches_poke_modes_outcome_in_each_pinned_case(sim, session, monkeypatch, raised, scenario):
    assert_modes_agree(sim, session, monkeypatch, raised, scenario)


@pytest.mark.property
# Each example is three real Airflow runs (3-8 s in all on an idle 2-core machine): few examples, and no shrinking,
# which would replay dozens of them; a failure still names its example, the same on every run (derandomized).
# The pinned cases, once @example()s of this test, made it take 72 s on 3.3.2 with the three legs sharing
# 2 cores, over the 60 s a property test may take a leg; make soak draws 25 times as many.
@sized(
    2,
    phases=(Phase.reuse, Phase.generate),
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(scenario=scenarios())
def test_every_mode_reaches_poke_modes_outcome_with_as_many_requests(sim, session, monkeypatch, raised, scenario):
    assert_modes_agree(sim, session, monkeypatch, raised, scenario)


def assert_modes_agree(sim: Any, session: Any, monkeypatch: Any, raised: Any, scenario: Scenario) -> None:
    configure(monkeypatch, sensor=scenario.sensor, hook={"max_retries": scenario.max_retries})
    outcomes = {mode: run_mode(sim, mode, list(scenario.script), scenario.tail, raised) for mode in modes()}

    state, detail = scenario.expected()
    for mode, outcome in outcomes.items():
        if state == "success":
            assert (outcome.state, outcome.detail) == (state, session), mode
        else:
            assert (outcome.state, outcome.detail) == (state, detail), (mode, outcomes)
    counts = [outcome.requests for outcome in outcomes.values()]
    if scenario.ending == "deadline":
        # The clock ends these, so a mode may make one check more than another; the deadline may cut the script.
        assert max(counts) - min(counts) <= 1, outcomes
    else:
        # Each request takes one answer of the script, the hook's retries included; nothing is sent after the last.
        assert counts == [len(scenario.script)] * len(counts), outcomes
