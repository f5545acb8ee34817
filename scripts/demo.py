"""
The main job: the example DAG against the local DevRev simulator, on Airflow's embedded SQLite DB.

1. Start the DevRev simulator on 127.0.0.1 with a session that is "uploaded" only on the 3rd check.
2. ``airflow db migrate``, then ``airflow connections test devrev_default`` against the simulator.
3. ``airflow dags test example_devrev_session`` for that session: the sensor waits, the operator fetches,
   the ``report`` task reads the session from XCom.
4. Print what the downstream task received, and what the simulator saw.

Run it with ``make demo`` (which creates the virtualenv first).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from _demo import airflow, airflow_environment, step

REPO = Path(__file__).resolve().parent.parent
HOME = Path(os.environ.get("AIRFLOW_HOME", REPO / ".airflow-demo")).resolve()
DAG_ID = "example_devrev_session"
VERSION_KEY = "com.acme.shop@5.2.0"

os.environ.update(airflow_environment(HOME, REPO))
os.environ.update({"DEVREV_EXAMPLE_POKE_INTERVAL": "2", "DEVREV_EXAMPLE_SENSOR_TIMEOUT": "120"})


def main() -> None:
    from airflow_provider_devrev.testing import DevRevSimulator

    HOME.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with DevRevSimulator() as sim:
        os.environ["AIRFLOW_CONN_DEVREV_DEFAULT"] = sim.connection_json()
        session = sim.add_session(
            sim.make_session(
                "mobile",
                platform="android",
                session_id=f"demo-upload-{int(time.time())}",
                is_crash=True,
                rage_tap=True,
            ),
            version_key=VERSION_KEY,
            appear_after_requests=3,
        )
        step(f"DevRev simulator on {sim.url}; session {session['session_id']} appears on the 3rd check")

        step(f"airflow db migrate (embedded SQLite in {HOME})")
        airflow("db", "migrate", log=HOME / "db-migrate.log")
        print("done")

        step("airflow connections test devrev_default")
        airflow("connections", "test", "devrev_default")

        step(f"airflow dags test {DAG_ID}")
        conf = {"platform": "android", "session_id": session["session_id"], "version_key": VERSION_KEY}
        dag_log = HOME / "dags-test.log"
        airflow("dags", "test", DAG_ID, "--conf", json.dumps(conf), log=dag_log)
        print(f"done (full log: {dag_log})")

        received = read_report(session["session_id"])
        requests = [f"{r.method} {r.path} -> {r.status}" for r in sim.requests]

    step("What the downstream `report` task received from XCom")
    print(json.dumps(received, indent=2, sort_keys=True))
    same = received["session"] == session
    step("Summary")
    print(f"session received downstream == session served by DevRev simulator: {same}")
    print(f"requests the simulator saw ({len(requests)}):")
    for line in requests:
        print(f"  {line}")
    print(f"wall time: {time.monotonic() - started:.1f} s")
    if not same:
        raise SystemExit("the downstream task did not receive the simulator's session")


def read_report(session_id: str) -> dict:
    """The ``report`` task's XCom from the newest run of the DAG, read from the metadata DB."""
    from airflow.models.dagrun import DagRun
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as db:
        run = db.query(DagRun).filter(DagRun.dag_id == DAG_ID).order_by(DagRun.id.desc()).first()
        if run is None or str(run.state) != "success":
            raise SystemExit(f"the DAG run did not succeed: {run and run.state}")
        query = XComModel.get_many(run_id=run.run_id, dag_ids=DAG_ID, task_ids="report", key="return_value")
        value = XComModel.deserialize_value(db.scalars(query).one())
    if value["session_id"] != session_id:
        raise SystemExit(f"unexpected session in XCom: {value['session_id']}")
    return value


if __name__ == "__main__":
    main()
