"""Testing your own DAG against the DevRev simulator: run it with ``dag.test()`` and read what it produced."""

from __future__ import annotations

import pytest

VERSION_KEY = "com.acme.shop@5.2.0"
GET = "/observability.sessions.get"


@pytest.fixture(autouse=True)
def short_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    # The DAG reads its poke interval at parse time, and dag.test() parses it again.
    monkeypatch.setenv("TRIAGE_POKE_INTERVAL", "0.2")


def xcom(run, task_id: str):  # type: ignore[no-untyped-def]
    """The value ``task_id`` returned in ``run`` (its ``return_value`` XCom)."""
    return run.get_task_instance(task_id).xcom_pull(task_ids=task_id)


@pytest.mark.devrev_simulator(seed_data=False)
def test_the_sensor_waits_until_the_session_is_uploaded(devrev_simulator, dag_bag) -> None:  # type: ignore[no-untyped-def]
    # A crash that DevRev answers 404 for twice, then serves: the sensor must wait for it.
    session = devrev_simulator.add_session(
        devrev_simulator.make_session("mobile", platform="android", is_crash=True),
        version_key=VERSION_KEY,
        appear_after_requests=3,
    )

    run = dag_bag.get_dag("triage_session").test(run_conf={"session_id": session["session_id"]})

    assert str(run.state) == "success"
    assert xcom(run, "get_session") == session
    assert xcom(run, "triage") == f"crash on {session['device_metadata']['model']}"
    # Two 404s and the sensor's success, then the operator's fetch.
    assert [r.status for r in devrev_simulator.requests_for(path=GET)] == [404, 404, 200, 200]


def test_a_seeded_session_is_there_at_once(devrev_simulator, dag_bag) -> None:  # type: ignore[no-untyped-def]
    # The seed data's well-known android crash (the DAG's default param).
    run = dag_bag.get_dag("triage_session").test()

    assert str(run.state) == "success"
    assert xcom(run, "get_session")["session_id"] == "sim-android-crash-0001"
    assert len(devrev_simulator.requests_for(path=GET)) == 2
