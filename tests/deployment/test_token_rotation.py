"""
A real deployment: a DevRev token rotated while the deferrable example DAG waits, the way a secrets policy
does it. The connection lives in the metadata DB; mid-wait it is updated through ``airflow connections``
(delete, then add with the new token), then DevRev revokes the old token. The running trigger, which holds the
old token, meets one 401, reads the connection again (through the API server, from the DB), sends the same
request with the new token at once, and the run succeeds. Every request of the run is attributed to the token
it carried; neither token may appear in any file or table the deployment wrote.

Airflow 3.3 only (slow: a minute or two). Run it alone with ``pytest -m deployment -s``.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_devrev.testing import DevRevSimulator, RecordedRequest
from tests.deployment.harness import (
    STARTUP_TIMEOUT,
    Deployment,
    airflow_version,
    count_in_files,
    deployment_in,
    wait_for,
)

pytestmark = [
    pytest.mark.deployment,
    pytest.mark.skipif(airflow_version() < (3, 3), reason="the deployment tests run Airflow 3.3's components"),
]

DAG_ID = "example_devrev_session_deferrable"
TASKS = ("wait_for_session", "get_session", "report")
GET = "/observability.sessions.get"
VERSION_KEY = "com.acme.shop@5.2.0"
CONN_ID = "devrev_default"
DEFER_TIMEOUT = 180.0
RUN_TIMEOUT = 180.0


@pytest.fixture
def sim() -> Iterator[DevRevSimulator]:
    with DevRevSimulator(token="deploy-old-" + secrets.token_hex(16), port=0) as simulator:
        yield simulator


@pytest.fixture
def deployment(tmp_path: Path, sim: DevRevSimulator) -> Iterator[Deployment]:
    env = {"DEVREV_EXAMPLE_POKE_INTERVAL": "1", "DEVREV_EXAMPLE_SENSOR_TIMEOUT": "240"}
    with deployment_in(tmp_path / "airflow", sim, dag_id=DAG_ID, env=env) as deployment:
        # The connection comes from the metadata DB here, not from the environment (which would win).
        deployment.env.pop("AIRFLOW_CONN_DEVREV_DEFAULT")
        yield deployment


def add_connection(d: Deployment, sim: DevRevSimulator, token: str) -> None:
    # --conn-password, which Airflow masks in the command line it records in its log table.
    d.cli("connections", "add", CONN_ID, "--conn-type", "devrev", "--conn-host", sim.url, "--conn-password", token)


def test_a_token_rotated_through_airflow_connections_keeps_the_deferred_wait_alive(
    sim: DevRevSimulator, deployment: Deployment
):
    d = deployment
    old_token, new_token = sim.token, "deploy-new-" + secrets.token_hex(16)
    add_connection(d, sim, old_token)

    d.start("scheduler", "scheduler", "--skip-serve-logs")
    d.start("dag-processor", "dag-processor")
    d.start("triggerer", "triggerer", "--skip-serve-logs")
    d.start("api-server", "api-server", "--host", "127.0.0.1", "--port", str(d.api_port), "--workers", "1")

    def all_healthy() -> dict[str, Any] | None:
        health = d.health()
        return health if health and all(part.get("status") == "healthy" for part in health.values()) else None

    wait_for("every component to report healthy", all_healthy, timeout=STARTUP_TIMEOUT, deployment=d)
    wait_for(
        f"the dag processor to store {DAG_ID}",
        lambda: d.query("SELECT dag_id FROM dag WHERE dag_id = ?", DAG_ID),
        timeout=STARTUP_TIMEOUT,
        deployment=d,
    )

    # Made now, uploaded only after the rotation: the trigger must meet the rotation while it still waits,
    # however slowly the deployment starts (a timed appearance was a guess that a loaded machine broke).
    upload = sim.make_session("mobile", platform="android", session_id="rotate-" + secrets.token_hex(8), is_crash=True)
    session_id = upload["session_id"]
    run_id = "rotate-" + secrets.token_hex(6)
    conf = {"platform": "android", "session_id": session_id, "version_key": VERSION_KEY}
    d.cli("dags", "unpause", DAG_ID)
    d.cli("dags", "trigger", DAG_ID, "--run-id", run_id, "--conf", json.dumps(conf))

    def checks() -> list[RecordedRequest]:
        return sim.requests_for(path=GET, session_id=session_id)

    def deferred_and_polled() -> bool:
        answered = [r for r in checks() if r.status is not None]
        return d.task_states(run_id).get("wait_for_session") == "deferred" and len(answered) >= 2

    wait_for("the sensor to defer and its trigger to poll", deferred_and_polled, timeout=DEFER_TIMEOUT, deployment=d)

    # The rotation, in the order a secrets policy does it: the connection first, then the old token revoked.
    d.cli("connections", "delete", CONN_ID)
    add_connection(d, sim, new_token)
    rotated_at = time.monotonic()
    sim.rotate_token(new_token)
    session = sim.add_session(upload, version_key=VERSION_KEY)

    def finished() -> str | None:
        state = d.run_state(run_id)
        return state if state in ("success", "failed") else None

    final_state = wait_for(f"dag run {run_id} to finish", finished, timeout=RUN_TIMEOUT, deployment=d)
    states = d.task_states(run_id)
    assert final_state == "success", f"the run {final_state}: {states}\n{d.tails()}"
    assert states == dict.fromkeys(TASKS, "success")
    assert d.xcom(run_id, "get_session") == session

    # Old token until the trigger's one 401, then the new one for everything: the trigger's resend, its
    # later polls and the downstream operator's fetch (a new worker, which reads the updated connection).
    requests = checks()
    unauthorized = [i for i, r in enumerate(requests) if r.status == 401]
    assert len(unauthorized) == 1, [(r.token, r.status) for r in requests]
    [first_401] = unauthorized
    assert {r.token for r in requests[: first_401 + 1]} == {1}
    assert {r.token for r in requests[first_401 + 1 :]} == {2}
    assert [r.status for r in requests[first_401 + 1 :]][-2:] == [200, 200], "the sensor's find, the operator's fetch"
    assert requests[first_401 + 1].time - requests[first_401].time < 5, "the resend followed the 401 at once"
    assert requests[first_401].time >= rotated_at - 1

    d.stop_all()
    for token in (old_token, new_token):
        assert not {p: n for p, n in count_in_files(d.home, token).items() if n}, "a token is in the deployment's files"
        assert not [t for t, text in d.dump_db().items() if token in text], "a token is in the metadata DB"
    trigger_log = next((path for path in count_in_files(d.home, session_id) if ".trigger." in path), None)
    assert trigger_log is not None, "no trigger log to search"
    assert "changed; using the new token" in (d.home / trigger_log).read_text()
