"""GetSessionOperator's own logic, against the simulator (the full runs are in tests/e2e)."""

from __future__ import annotations

import pytest

from airflow_provider_devrev.exceptions import DevRevInvalidInputError, DevRevNotFoundError
from airflow_provider_devrev.operators.devrev import GetSessionOperator

VERSION = "com.example.app@1.0.0"


def test_execute_returns_the_session_and_logs_one_summary_line(devrev_simulator, capsys, caplog):
    sim = devrev_simulator
    session = sim.add_session(sim.make_session("mobile", platform="ios", is_crash=True), version_key=VERSION)
    op = GetSessionOperator(task_id="get", platform="ios", session_id=session["session_id"], version_key=VERSION)

    assert op.execute({}) == session

    # Airflow 2.11 logs through stdlib logging, Airflow 3 through structlog to stdout (3.0 through both).
    logged = capsys.readouterr().out + caplog.text
    lines = [line for line in logged.splitlines() if "Fetched session" in line]
    assert lines
    for line in lines:
        assert session["session_id"] in line
        assert "crash=True" in line
    assert session["device_metadata"]["model"] not in logged, "never the whole body"


def test_missing_session_fails_the_task(devrev_simulator):
    op = GetSessionOperator(task_id="get", platform="web", session_id="nope", version_key=VERSION)
    with pytest.raises(DevRevNotFoundError):
        op.execute({})


def test_bad_rendered_values_fail_before_any_request(devrev_simulator):
    op = GetSessionOperator(task_id="get", platform="{{ params.p }}", session_id="s", version_key=VERSION)
    op.platform = "windows"  # what rendering would have produced

    with pytest.raises(DevRevInvalidInputError, match="platform='windows'"):
        op.execute({})
    assert devrev_simulator.requests == []


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"platform": "windows"}, "platform"),
        ({"session_id": "  "}, "session_id"),
        ({"version_key": None}, "version_key"),
        ({"timeout": -1}, "timeout"),
        ({"max_retries": "x"}, "max_retries"),
    ],
)
def test_literal_bad_arguments_fail_at_construction(kwargs, field):
    args = {"platform": "android", "session_id": "s", "version_key": "v", **kwargs}
    with pytest.raises(DevRevInvalidInputError, match=field):
        GetSessionOperator(task_id="get", **args)


def test_hook_is_built_lazily_with_the_operators_options(devrev_simulator):
    op = GetSessionOperator(
        task_id="get", platform="web", session_id="s", version_key="v", timeout=3, max_retries=1, max_retry_wait=9
    )
    assert "hook" not in vars(op)

    settings = op.hook.settings
    assert (settings.read_timeout, settings.retry.max_retries, settings.retry.max_retry_wait) == (3, 1, 9)
