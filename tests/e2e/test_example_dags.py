"""End to end: the example DAGs and the failure paths, run by real Airflow (dag.test) against the simulator."""

from __future__ import annotations

import re
import socket
import textwrap
from typing import Any

import pytest

from tests.e2e.airflow_helpers import dag_bag, load_dag, task_states, xcom

pytestmark = pytest.mark.e2e

GET = "/observability.sessions.get"


def _airflow_3_0() -> bool:
    from airflow import __version__

    return __version__.startswith("3.0.")


def sensor_modes(*, reason: str, strict: bool) -> list[Any]:
    """The three sensor modes, reschedule an xfail on Airflow 3.0 for ``reason``."""
    reschedule = pytest.param("reschedule", marks=pytest.mark.xfail(_airflow_3_0(), reason=reason, strict=strict))
    return ["poke", reschedule, "deferrable"]


# Airflow 3.0's dag.test() in-process supervisor hands BaseSensorOperator its first reschedule date as a
# string, so reschedule mode fails with a TypeError in run_duration there (Airflow's bug, fixed by 3.3).
# Strict: the day it passes, this marker must go. Reschedule mode is tested on 2.11 and 3.3.
SENSOR_MODES = sensor_modes(reason="Airflow 3.0 dag.test(): reschedule date arrives as a str", strict=True)
# The same, not strict, for a wait whose first check may outlast the whole timeout (its retries, on a loaded
# machine): the wait then ends in that first try, before any reschedule, and passes on 3.0 too.
SENSOR_MODES_FIRST_TRY_MAY_END = sensor_modes(
    reason="Airflow 3.0 dag.test(): reschedule date may arrive as a str", strict=False
)


@pytest.fixture
def sim(devrev_simulator, airflow_db, fast_examples):
    return devrev_simulator


@pytest.fixture
def trigger_runs(monkeypatch):
    """Records every DevRevSessionTrigger that Airflow ran (dag.test runs triggers in this process)."""
    from airflow_provider_devrev.triggers.devrev import DevRevSessionTrigger

    runs: list[dict] = []
    original = DevRevSessionTrigger.run

    async def spy(self):
        runs.append(self.serialize()[1])
        async for event in original(self):
            yield event

    monkeypatch.setattr(DevRevSessionTrigger, "run", spy)
    return runs


def late_session(sim, *, polls: int, kind: str = "mobile", platform: str = "android"):
    session = sim.make_session(kind, platform=platform)
    return sim.add_session(session, version_key="com.acme.shop@5.2.0", appear_after_requests=polls)


def conf_for(session, platform="android"):
    return {"platform": platform, "session_id": session["session_id"], "version_key": "com.acme.shop@5.2.0"}


@pytest.mark.parametrize("polls", [1, 3])
def test_example_dag_waits_fetches_and_hands_the_session_downstream(sim, polls):
    session = late_session(sim, polls=polls)

    run = load_dag("example_devrev_session").test(run_conf=conf_for(session))

    assert str(run.state) == "success"
    assert task_states(run) == {"wait_for_session": "success", "get_session": "success", "report": "success"}
    # The sensor saw `polls` requests (the session appears on the last), the operator one more.
    assert len(sim.requests_for(path=GET)) == polls + 1
    assert xcom(run, "wait_for_session") == session
    assert xcom(run, "get_session") == session
    received = xcom(run, "report")
    assert received["session"] == session
    assert received["problems"] == [k for k in ("is_crash", "is_anr", "rage_tap") if session[k]]


def test_example_dag_deferrable_really_defers_and_the_trigger_finds_the_session(sim, trigger_runs):
    session = late_session(sim, polls=4, kind="web", platform="web")

    run = load_dag("example_devrev_session_deferrable").test(run_conf=conf_for(session, "web"))

    assert str(run.state) == "success"
    assert task_states(run) == {"wait_for_session": "success", "get_session": "success", "report": "success"}
    [kwargs] = trigger_runs
    assert kwargs["session_id"] == session["session_id"]
    assert kwargs["poll_interval"] == 0.2
    assert sim.token not in str(kwargs)
    # One check on the worker, then the trigger's polls until the 4th request finds it, then the operator.
    assert len(sim.requests_for(path=GET)) == 4 + 1
    assert xcom(run, "wait_for_session") == session
    assert xcom(run, "report")["session"] == session


def test_mapped_example_fetches_every_session_and_summarizes(sim):
    sessions = [
        sim.add_session(sim.make_session("mobile", platform="ios"), version_key="com.acme.shop@5.2.0") for _ in range(3)
    ]
    ids = [s["session_id"] for s in sessions]

    run = load_dag("example_devrev_sessions_mapped").test(
        run_conf={"platform": "ios", "version_key": "com.acme.shop@5.2.0", "session_ids": ids}
    )

    assert str(run.state) == "success"
    assert task_states(run) == {
        "session_ids": "success",
        **{f"get_session[{i}]": "success" for i in range(3)},
        "summarize": "success",
    }
    assert [xcom(run, "get_session", map_index=i) for i in range(3)] == sessions
    summary = xcom(run, "summarize")
    assert summary["sessions"] == 3
    assert summary["session_ids"] == ids
    assert summary["total_duration_ms"] == sum(s["session_duration_ms"] for s in sessions)


@pytest.mark.parametrize("mode", SENSOR_MODES)
def test_a_session_that_never_appears_times_out(sim, mode, capsys, caplog):
    run = load_dag(f"devrev_e2e_timeout_{mode}").test()

    assert str(run.state) == "failed"
    assert task_states(run) == {"wait_for_session": "failed"}
    # Without colours and line wrapping (Airflow 3.0 renders errors for an 80-column console).
    logged = " ".join(re.sub(r"\x1b\[[0-9;]*m", "", capsys.readouterr().out + caplog.text).split())
    # The timeout's own message, rendered with its figures (a traceback's source lines would not match).
    assert re.search(r"run duration of [0-9.]+ seconds exceeds|did not appear before the sensor's timeout", logged)
    # A 1 s timeout with a 0.2 s poke interval: a few checks, never a storm.
    assert 2 <= len(sim.requests_for(path=GET)) <= 1 / 0.2 + 2


@pytest.mark.parametrize("mode", SENSOR_MODES_FIRST_TRY_MAY_END)
def test_a_sensor_that_never_reached_devrev_says_so_at_its_timeout(sim, mode, monkeypatch, capsys, caplog):
    # The connection now points at a port nothing listens on, with the hook's default retries (5).
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("AIRFLOW_CONN_DEVREV_DEFAULT", sim.connection_json().replace(str(sim.port), str(port)))
    monkeypatch.setenv("DEVREV_E2E_SENSOR_TIMEOUT", "2")

    run = load_dag(f"devrev_e2e_timeout_{mode}").test()

    assert task_states(run) == {"wait_for_session": "failed"}
    logged = " ".join(re.sub(r"\x1b\[[0-9;]*m", "", capsys.readouterr().out + caplog.text).split())
    assert "timed out without reaching DevRev" in logged
    assert f"connection refused by 127.0.0.1:{port}" in logged
    assert "did not appear" not in logged
    # How late it ends is bounded in tests/network/test_failure_names.py: here the first dag.test() of a
    # session spends most of its time starting Airflow's in-process API.


@pytest.mark.parametrize("mode", SENSOR_MODES)
def test_soft_fail_skips_a_session_that_never_appears(sim, mode):
    run = load_dag(f"devrev_e2e_soft_fail_{mode}").test()

    assert task_states(run) == {"wait_for_session": "skipped"}


@pytest.mark.parametrize("mode", SENSOR_MODES)
def test_a_401_while_waiting_fails_the_sensor_at_once(sim, mode, monkeypatch):
    # Long enough that only the 401 can end this wait.
    monkeypatch.setenv("DEVREV_E2E_SENSOR_TIMEOUT", "60")
    sim.add_fault("status", status=404, body={"type": "not_found"}, times=2)
    sim.add_fault("revoked")

    run = load_dag(f"devrev_e2e_timeout_{mode}").test(run_conf={"session_id": "never-uploaded"})

    assert str(run.state) == "failed"
    assert task_states(run) == {"wait_for_session": "failed"}
    # The third request got the 401; nothing was sent after it.
    assert len(sim.requests_for(path=GET)) == 3


def test_a_bad_platform_in_a_dag_file_is_an_import_error_naming_the_field(tmp_path):
    (tmp_path / "bad_platform.py").write_text(
        textwrap.dedent(
            """
            from datetime import datetime
            from airflow.providers.common.compat.sdk import DAG
            from airflow_provider_devrev.operators.devrev import GetSessionOperator

            with DAG(dag_id="bad_platform", schedule=None, start_date=datetime(2025, 1, 1)):
                GetSessionOperator(task_id="get", platform="windows", session_id="s", version_key="v")
            """
        )
    )

    bag = dag_bag(str(tmp_path))

    [(path, error)] = bag.import_errors.items()
    assert path.endswith("bad_platform.py")
    assert "platform" in error
    assert "'windows'" in error
    assert "android, ios, web" in error
