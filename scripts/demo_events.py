"""
The event-driven crash triage example (``example_devrev_crash_triage``, Airflow 3) on a real deployment.

1. Start the DevRev simulator on 127.0.0.1 with its seed data plus two crash sessions that already exist.
2. Start Airflow's components (scheduler, dag processor, triggerer, API server) in ``.airflow-demo-events/``
   (recreated on every run; embedded SQLite), with only the triage DAG, its watch polling every 2 s.
3. Unpause the DAG and wait for the watch's first poll: what exists then never triggers a run.
4. Add a crash session and a non-crash session now, and a second crash that DevRev "has" only 10 s later
   (mobile SDKs upload sessions after they end).
5. Wait for the triage runs, print what each one triaged (its XCom and the line its task printed), check
   that both crashes were triaged once and nothing else was, and stop everything.

It shares the deployment harness of the tests (``tests/deployment/harness.py``). Run it with
``make demo-events`` (``.venv/bin/python scripts/demo_events.py``); about a minute.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from _demo import step  # noqa: E402

from airflow_provider_devrev.testing import DevRevSimulator  # noqa: E402
from tests.deployment.harness import (  # noqa: E402
    TRIAGE_DAG_FILE,
    TRIAGE_DAG_ID,
    TRIAGE_TASK,
    Deployment,
    DeploymentError,
    airflow_major,
    asset_event_ids,
    deployment_in,
    list_polls,
    triage_env,
    triage_runs,
    triaged_ids,
    wait_for,
)

HOME = REPO / ".airflow-demo-events"
VERSION_KEY = "com.acme.shop@5.2.0"  # what the example DAG watches
POLL_INTERVAL = 2.0
SECOND_CRASH_AFTER = 10.0
TIMEOUT = 120.0


def add(sim: DevRevSimulator, session_id: str, *, is_crash: bool, age: float, after: float | None = None) -> None:
    created_at = datetime.now(UTC) - timedelta(seconds=age)
    session = sim.make_session(
        "mobile", platform="android", session_id=session_id, created_at=created_at, is_crash=is_crash
    )
    sim.add_session(session, version_key=VERSION_KEY, appear_after_seconds=after)


def printed_by_task(d: Deployment, run_id: str) -> list[str]:
    """The lines the run's triage task printed, from its log file."""
    lines = []
    for log in sorted((d.home / "logs").glob(f"dag_id={TRIAGE_DAG_ID}/run_id={run_id}/task_id={TRIAGE_TASK}/*.log")):
        for raw in log.read_text(errors="replace").splitlines():
            try:
                record = json.loads(raw)
            except ValueError:
                continue
            if isinstance(record, dict) and record.get("logger") == "task.stdout":
                lines.append(str(record.get("event")))
    return lines


def demo(sim: DevRevSimulator, d: Deployment) -> list[str]:
    step("Starting Airflow's scheduler, dag processor, triggerer and API server")
    d.start_core()
    print(f"healthy after {time.monotonic() - d.created_at:.1f} s (home: {d.home})")

    step(f"airflow dags unpause {TRIAGE_DAG_ID}; waiting for the watch's first poll")
    d.cli("dags", "unpause", TRIAGE_DAG_ID)
    [baseline] = wait_for("the watch's first poll", lambda: list_polls(sim)[:1], timeout=TIMEOUT, deployment=d)
    print(f"first poll: POST {baseline.path} {json.dumps(baseline.body)} -> {baseline.status}")
    print("the 2 existing crash sessions are recorded as seen: they never trigger a run")

    step("New sessions: crash demo-crash-1 and non-crash demo-no-crash now; crash demo-crash-2 in 10 s")
    added = time.monotonic()
    add(sim, "demo-crash-1", is_crash=True, age=120)
    add(sim, "demo-no-crash", is_crash=False, age=60)
    add(sim, "demo-crash-2", is_crash=True, age=3 * 3600, after=SECOND_CRASH_AFTER)  # a late upload

    def both_triaged() -> bool:
        runs = triage_runs(d)
        return {"demo-crash-1", "demo-crash-2"} <= set(triaged_ids(d)) and all(r.state == "success" for r in runs)

    try:
        wait_for("both crash sessions to be triaged", both_triaged, timeout=TIMEOUT, deployment=d)
    except DeploymentError:
        print(f"asset events so far: {asset_event_ids(d)}; runs: {triage_runs(d)}")
        raise
    print(f"both triaged {time.monotonic() - added:.1f} s after they were added")

    step("The triage runs")
    for run in triage_runs(d):
        print(f"{run.run_id}: {run.state}, triaged {list(run.triaged)}")
        for line in printed_by_task(d, run.run_id):
            print(f"    task printed: {line}")
    polls = list_polls(sim)
    statuses = sorted({str(poll.status) for poll in polls})
    print(f"the watch polled DevRev {len(polls)} times (every {POLL_INTERVAL:.0f} s); answers: {', '.join(statuses)}")
    return triaged_ids(d)


def main() -> int:
    if airflow_major() < 3:
        print("This demo needs Airflow 3 (event-driven scheduling); use .venv (Airflow 3.3.2).", file=sys.stderr)
        return 1
    started = time.monotonic()
    if HOME.exists():
        shutil.rmtree(HOME)
    env = triage_env(POLL_INTERVAL)
    step(f"DevRev simulator on 127.0.0.1: seed data plus 2 existing crash sessions; Airflow home {HOME}")
    try:
        with DevRevSimulator() as sim:
            add(sim, "existing-crash-1", is_crash=True, age=1800)
            add(sim, "existing-crash-2", is_crash=True, age=900)
            print(f"simulator at {sim.url}")
            with deployment_in(HOME, sim, dag_id=TRIAGE_DAG_ID, dag_files=[TRIAGE_DAG_FILE], env=env) as d:
                triaged = demo(sim, d)
                step("Stopping every component")
    except DeploymentError as err:
        print(f"\nDEMO FAILED: {str(err)[:6000]}", file=sys.stderr)
        return 1
    print("all stopped, nothing left running")
    print(f"wall time: {time.monotonic() - started:.1f} s")
    if sorted(triaged) != ["demo-crash-1", "demo-crash-2"]:
        print(f"expected each crash triaged once and nothing else; triaged: {triaged}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
