"""DevRevSessionSensor's own logic, against the simulator (the full runs are in tests/e2e)."""

from __future__ import annotations

import time

import pytest
from airflow.providers.common.compat.sdk import (
    AirflowFailException,
    AirflowSensorTimeout,
    AirflowSkipException,
    PokeReturnValue,
    TaskDeferred,
)

from airflow_provider_devrev.exceptions import DevRevInvalidInputError
from airflow_provider_devrev.sensors.devrev import DevRevSessionSensor
from airflow_provider_devrev.triggers.devrev import DevRevSessionTrigger

VERSION = "com.example.app@1.0.0"


def sensor(session_id: str = "s-1", **kwargs) -> DevRevSessionSensor:
    kwargs.setdefault("max_retries", 0)
    return DevRevSessionSensor(task_id="wait", platform="android", session_id=session_id, version_key=VERSION, **kwargs)


def test_poke_returns_the_session_as_its_xcom(devrev_simulator):
    sim = devrev_simulator
    session = sim.add_session(sim.make_session("mobile", platform="android"), version_key=VERSION)

    result = sensor(session["session_id"]).poke({})

    assert isinstance(result, PokeReturnValue)
    assert result.is_done
    assert result.xcom_value == session


@pytest.mark.parametrize(
    ("fault", "params"),
    [
        ("status", {"status": 404, "body": {"type": "not_found"}}),
        ("rate_limit", {"retry_after": 1}),
        ("server_error", {"status": 500}),
        ("server_error", {"status": 502}),
        ("server_error", {"status": 503}),
        ("server_error", {"status": 504}),
        ("drop", {}),
    ],
)
def test_poke_keeps_waiting_on_not_found_and_transient_failures(devrev_simulator, fault, params):
    devrev_simulator.add_fault(fault, **params)

    assert sensor().poke({}) is False
    assert len(devrev_simulator.requests) == 1


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (400, {"type": "bad_request", "message": "no"}),
        (401, {"type": "token_revoked", "message": "revoked"}),
        (403, {"type": "forbidden"}),
        (413, {"type": "request_entity_too_large", "max_bytes": 10}),
    ],
)
def test_poke_fails_at_once_when_waiting_cannot_help(devrev_simulator, status, body):
    devrev_simulator.add_fault("status", status=status, body=body)

    with pytest.raises(AirflowFailException, match=str(status)) as caught:
        sensor().poke({})

    assert body["type"] in str(caught.value)
    assert len(devrev_simulator.requests) == 1


def test_deferrable_execute_returns_at_once_when_the_session_exists(devrev_simulator):
    sim = devrev_simulator
    session = sim.add_session(sim.make_session("web", platform="web"), version_key=VERSION)
    task = DevRevSessionSensor(
        task_id="wait", platform="web", session_id=session["session_id"], version_key=VERSION, deferrable=True
    )

    assert task.execute({}) == session


def test_deferrable_execute_defers_with_the_sensor_deadline_and_no_secret(devrev_simulator):
    task = sensor("not-yet", deferrable=True, poke_interval=42, timeout=3600, request_timeout=7)

    before = time.time()
    with pytest.raises(TaskDeferred) as caught:
        task.execute({})

    deferred = caught.value
    trigger = deferred.trigger
    assert isinstance(trigger, DevRevSessionTrigger)
    assert deferred.method_name == "execute_complete"
    _, kwargs = trigger.serialize()
    assert kwargs["poll_interval"] == 42
    assert kwargs["hook_options"] == {"timeout": 7.0, "max_retries": 0}
    assert before + 3600 - 1 <= kwargs["end_time"] <= time.time() + 3600
    assert before + 42 - 1 <= kwargs["next_poll_at"] <= time.time() + 42
    assert kwargs["exponential_backoff"] is False
    assert deferred.timeout.total_seconds() > 3600
    assert devrev_simulator.token not in str(kwargs)
    assert len(devrev_simulator.requests) == 1


def test_execute_complete_returns_the_session_of_a_success_event():
    session = {"type": "web", "session_id": "x"}
    assert sensor().execute_complete({}, {"status": "success", "session": session}) == session


def test_execute_complete_turns_an_error_event_into_the_same_failure_as_poke_mode():
    event = {"status": "error", "error_type": "token_revoked", "status_code": 401, "message": "revoked"}
    with pytest.raises(AirflowFailException, match="401 \\(token_revoked\\): revoked"):
        sensor().execute_complete({}, event)


def test_execute_complete_turns_the_deadline_into_a_sensor_timeout():
    event = {"status": "error", "error_type": "sensor_timeout", "status_code": None, "message": "too late"}
    with pytest.raises(AirflowSensorTimeout, match="too late"):
        sensor().execute_complete({}, event)


@pytest.mark.parametrize(
    ("options", "error_type", "status_code", "raised"),
    [
        ({"never_fail": True}, "sensor_timeout", None, AirflowSensorTimeout),
        ({"soft_fail": True}, "sensor_timeout", None, AirflowSkipException),
        ({"never_fail": True}, "token_revoked", 401, AirflowSkipException),
        ({}, "token_revoked", 401, AirflowFailException),
    ],
    ids=["never_fail-deadline", "soft_fail-deadline", "never_fail-401", "plain-401"],
)
def test_a_resumed_sensor_ends_as_poke_mode_does(options, error_type, status_code, raised):
    # Through Airflow's own resume_execution, which on 3.3 (not 2.11 or 3.0) skips any failure under never_fail:
    # poke mode skips a failed check under never_fail, but its deadline fails the task (only soft_fail skips it).
    event = {"status": "error", "error_type": error_type, "status_code": status_code, "message": "no"}
    with pytest.raises(raised):
        sensor(**options).resume_execution("execute_complete", {"event": event}, {})


@pytest.mark.parametrize("event", [None, {}, {"status": "weird"}, {"status": "success", "session": None}])
def test_execute_complete_rejects_missing_or_malformed_events(event):
    with pytest.raises(AirflowFailException, match="event"):
        sensor().execute_complete({}, event)


def test_literal_bad_arguments_fail_at_construction_templated_ones_later():
    with pytest.raises(DevRevInvalidInputError, match="platform='windows'"):
        DevRevSessionSensor(task_id="w", platform="windows", session_id="s", version_key="v")
    with pytest.raises(DevRevInvalidInputError, match="session_id"):
        DevRevSessionSensor(task_id="w", platform="ios", session_id="", version_key="v")
    templated = DevRevSessionSensor(
        task_id="w", platform="{{ params.p }}", session_id="{{ params.s }}", version_key="v"
    )
    assert templated.template_fields == ("platform", "session_id", "version_key", "devrev_conn_id")


def test_deferrable_defaults_to_airflows_setting(monkeypatch):
    import importlib

    import airflow_provider_devrev.sensors.devrev as module

    assert sensor().deferrable is False
    monkeypatch.setenv("AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE", "True")
    reloaded = importlib.reload(module)
    try:
        assert reloaded.DevRevSessionSensor(task_id="w", platform="ios", session_id="s", version_key="v").deferrable
    finally:
        monkeypatch.undo()
        importlib.reload(module)


class GiveUpQuietly(DevRevSessionSensor):
    """A user's subclass: at its own deadline it skips on purpose (no soft_fail, no never_fail)."""

    def poke(self, context):
        try:
            raise AirflowSensorTimeout("the session never came")
        except AirflowSensorTimeout as err:
            raise AirflowSkipException("no session today: nothing to do") from err


class SkipOnResume(DevRevSessionSensor):
    def execute_complete(self, context, event=None):
        try:
            raise AirflowSensorTimeout("late")
        except AirflowSensorTimeout as err:
            raise AirflowSkipException("skip on purpose") from err


@pytest.mark.parametrize("never_fail", [False, True])
def test_a_skip_a_subclass_chains_to_a_timeout_of_its_own_stays_a_skip(never_fail):
    """Only the sensor's own deadline is turned back from never_fail's skip; a user's deliberate skip is kept."""
    options = {"never_fail": True} if never_fail else {}
    sensor = GiveUpQuietly(task_id="wait", platform="android", session_id="s-1", version_key=VERSION, **options)
    with pytest.raises(AirflowSkipException, match="nothing to do"):
        sensor.execute({})
    resumed = SkipOnResume(task_id="wait", platform="android", session_id="s-1", version_key=VERSION, **options)
    # Airflow 3.3's resume_execution may re-raise it as never_fail's own skip: a skip all the same.
    with pytest.raises(AirflowSkipException):
        resumed.resume_execution("execute_complete", {"event": {}}, {})


@pytest.mark.parametrize(
    ("options", "raised"), [({}, AirflowSensorTimeout), ({"soft_fail": True}, AirflowSkipException)]
)
def test_a_first_check_that_ends_past_the_deadline_ends_the_wait_as_poke_modes_loop_does(
    devrev_simulator, options, raised
):
    """Poke mode's loop reads the clock after each check: past the timeout it waits no more, checks no more."""
    devrev_simulator.add_fault("slow", delay=0.5)
    task = sensor("not-yet", deferrable=True, poke_interval=1, timeout=0.2, **options)

    with pytest.raises(raised, match="timed out"):
        task.execute({})

    assert len(devrev_simulator.requests) == 1
