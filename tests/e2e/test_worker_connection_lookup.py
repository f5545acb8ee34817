"""
On the worker (an operator, a sensor in poke or reschedule mode), what a secrets backend that fails does to a
DevRev task: tried with a real secrets backend, configured as a deployment configures one, in real Airflow
(``dag.test``) against the simulator.
"""

from __future__ import annotations

import json

import pytest

from tests.e2e.airflow_helpers import load_dag, task_states
from tests.e2e.flaky_secrets import FAILED, lookups

pytestmark = pytest.mark.e2e

VERSION = "com.acme.shop@5.2.0"
CONN_ID = "devrev_vault"  # as in dags/devrev_e2e_vault.py: no other backend has it


def _forget_secrets_backends() -> None:
    # Airflow 3.3 keeps the backends it built once a custom one is configured; 2.11 and 3.0 build them per lookup.
    try:
        from airflow.sdk.configuration import clear_secrets_backends_cache
    except ImportError:
        return
    clear_secrets_backends_cache()


@pytest.fixture
def flaky_store(devrev_simulator, airflow_db, tmp_path, monkeypatch):
    """Configure the secrets backend to hold the simulator's connection; returns ``fail(n)`` and its lookup log."""
    connections = tmp_path / "connections.json"
    connections.write_text(json.dumps({CONN_ID: json.loads(devrev_simulator.connection_json())}), encoding="utf-8")
    log = tmp_path / "lookups.log"

    def failing(failures: int):
        kwargs = {"connections": str(connections), "lookups": str(log), "failures": failures}
        monkeypatch.setenv("AIRFLOW__SECRETS__BACKEND", "tests.e2e.flaky_secrets.FlakySecretsBackend")
        monkeypatch.setenv("AIRFLOW__SECRETS__BACKEND_KWARGS", json.dumps(kwargs))
        _forget_secrets_backends()
        return log

    yield failing
    monkeypatch.undo()
    _forget_secrets_backends()


# What a user meets when the secrets backend fails on the worker: Airflow itself catches the backend's exception
# and, as no other backend has the connection, raises AirflowNotFoundException ("The conn_id ... isn't defined").
# The provider cannot tell that from a connection that does not exist, so it is final: the task fails at its
# first lookup, naming the connection, before any request (measured on 2.11.2, 3.0.6 and 3.3.2; docs/choices.md).
@pytest.mark.parametrize("task", ["operator", "poke", "reschedule"])
def test_a_failing_secrets_backend_on_the_worker_fails_the_task_at_once_naming_the_connection(
    devrev_simulator, flaky_store, task, capsys, caplog
):
    sim = devrev_simulator
    session = sim.add_session(sim.make_session("mobile", platform="android"), version_key=VERSION)
    log = flaky_store(1000)

    run = load_dag(f"devrev_e2e_vault_{task}").test(run_conf={"session_id": session["session_id"]})

    assert task_states(run) == {"task": "failed"}
    assert set(lookups(log)) == {FAILED}
    # Airflow 2.11 asks the backend once per lookup, 3.x twice (the worker, then the API server): one lookup.
    assert 1 <= len(lookups(log)) <= 2
    assert CONN_ID in capsys.readouterr().out + caplog.text
    assert sim.requests == []
