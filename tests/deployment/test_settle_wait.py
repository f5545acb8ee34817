"""
A real deployment: a non-deferrable ``ListSessionsOperator`` waits for ``settle`` under Airflow's own scheduler
(LocalExecutor, SQLite, no triggerer at all) by running twice: once to learn it must wait, once to list.

The DAG is ``tests/e2e/dags/devrev_e2e_settle.py``: the interval ends when the task before the export ran, so the
export's first try always comes too early. Counted where Airflow decides it: the task's try number, its
``task_reschedule`` rows, when each run started; and the CPU the scheduler's processes (scheduler, executor
workers, task processes) spent over the run, against a run of the same DAG that lists at once.

Run it alone with ``pytest -m deployment -s tests/deployment/test_settle_wait.py`` (``-s`` shows the figures).
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psutil
import pytest

from airflow_provider_devrev.testing import DevRevSimulator
from tests.deployment.harness import STARTUP_TIMEOUT, Component, Deployment, airflow_major, deployment_in, wait_for

pytestmark = [
    pytest.mark.deployment,
    pytest.mark.skipif(airflow_major() < 3, reason="starts Airflow 3's components (api-server, dag-processor)"),
]

DAG_FILE = Path(__file__).resolve().parents[1] / "e2e" / "dags" / "devrev_e2e_settle.py"
DAG_ID = "devrev_e2e_settle"
#: Longer than under `dags test`: a scheduler takes a few seconds to start the export after the task before it.
SETTLE_SECONDS = 15
VERSION_KEY = "com.acme.shop@5.2.0"
LIST = "/observability.sessions.list"
RUN_TIMEOUT = 180.0


@pytest.fixture
def sim() -> Iterator[DevRevSimulator]:
    """The simulator on the wall clock, which the DB's dates are on too."""
    with DevRevSimulator(port=0, clock=time.time, seed_data=False) as simulator:
        yield simulator


@pytest.fixture
def deployment(tmp_path: Path, sim: DevRevSimulator) -> Iterator[Deployment]:
    env = {"DEVREV_E2E_SETTLE_SECONDS": str(SETTLE_SECONDS)}
    with deployment_in(tmp_path / "airflow", sim, dag_id=DAG_ID, dag_files=[], env=env) as deployment:
        shutil.copy(DAG_FILE, deployment.home / "dags" / DAG_FILE.name)
        yield deployment


def cpu_seconds(component: Component) -> float:
    """User + system CPU of the component's live processes and of the children they reaped (task processes)."""
    total = 0.0
    for proc in component.members():
        try:
            times = proc.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system + times.children_user + times.children_system
    return total


def utc(value: str) -> datetime:
    return datetime.fromisoformat(value).replace(tzinfo=UTC)


def run(d: Deployment, scheduler: Component, run_id: str, conf: dict[str, str]) -> dict[str, Any]:
    """Trigger one run and wait for it to succeed; what the export did, read from the DB, and what it cost."""

    def finished() -> str | None:
        state = d.run_state(run_id)
        return state if state in ("success", "failed") else None

    cpu_before, started = cpu_seconds(scheduler), time.monotonic()
    d.cli("dags", "trigger", DAG_ID, "--run-id", run_id, "--conf", json.dumps(conf))
    state = wait_for(f"run {run_id} to finish", finished, timeout=RUN_TIMEOUT, deployment=d)
    wall, cpu = time.monotonic() - started, cpu_seconds(scheduler) - cpu_before
    assert state == "success", f"{d.task_states(run_id)}\n{d.tails()}"
    [ti] = d.query(
        "SELECT id, try_number, state, duration FROM task_instance WHERE dag_id = ? AND run_id = ? AND task_id = ?",
        DAG_ID,
        run_id,
        "export",
    )
    reschedules = d.query(
        "SELECT start_date, end_date, reschedule_date FROM task_reschedule WHERE ti_id = ? ORDER BY id", ti["id"]
    )
    return {"ti": ti, "reschedules": reschedules, "cpu": cpu, "wall": wall}


def test_a_non_deferrable_export_runs_twice_under_the_scheduler_and_needs_no_triggerer(sim, deployment, tmp_path):
    d = deployment
    scheduler = d.start("scheduler", "scheduler", "--skip-serve-logs")
    d.start("dag-processor", "dag-processor")
    d.start("api-server", "api-server", "--host", "127.0.0.1", "--port", str(d.api_port), "--workers", "1")
    wait_for(
        "the scheduler to report healthy",
        lambda: (d.health() or {}).get("scheduler", {}).get("status") == "healthy",
        timeout=STARTUP_TIMEOUT,
        deployment=d,
    )
    wait_for(
        f"the dag processor to store {DAG_ID}",
        lambda: d.query("SELECT dag_id FROM dag WHERE dag_id = ?", DAG_ID),
        timeout=STARTUP_TIMEOUT,
        deployment=d,
    )
    d.cli("dags", "unpause", DAG_ID)
    now = datetime.now(UTC)
    session = sim.make_session("mobile", platform="android", session_id="in-interval", created_at=now)
    sim.add_session(session, version_key=VERSION_KEY)
    output = tmp_path / "export.jsonl"

    # A run whose interval ends now: it must wait SETTLE_SECONDS. No triggerer runs in this deployment.
    waited = run(d, scheduler, "settle-wait", {"after": (now - timedelta(hours=1)).isoformat(), "output": str(output)})
    listed = [request.time for request in sim.requests_for(path=LIST)]
    # The control: an interval that settled long ago lists at once.
    at_once = run(
        d,
        scheduler,
        "settled-long-ago",
        {
            "after": (now - timedelta(days=2)).isoformat(),
            "before": (now - timedelta(days=1)).isoformat(),
            "output": str(tmp_path / "old.jsonl"),
        },
    )

    assert (waited["ti"]["try_number"], waited["ti"]["state"]) == (1, "success"), waited
    # One reschedule: a run that ended saying "wait until <date>"; then the run that listed, no earlier.
    [rescheduled] = waited["reschedules"]
    ready = utc(rescheduled["reschedule_date"])
    assert ready - utc(rescheduled["end_date"]) > timedelta(seconds=SETTLE_SECONDS / 3), rescheduled
    assert len(listed) == 1
    assert listed[0] >= ready.timestamp()
    assert [json.loads(line)["session_id"] for line in output.read_text().splitlines()] == ["in-interval"]
    assert (at_once["ti"]["try_number"], at_once["reschedules"]) == (1, [])

    held = (ready - utc(rescheduled["end_date"])).total_seconds()
    print(
        f"\nsettle wait under the scheduler (LocalExecutor, no triggerer): try 1, 1 task_reschedule row, 2 runs, "
        f"held {held:.1f} s between them; scheduler processes {waited['cpu']:.1f} s CPU over {waited['wall']:.1f} s; "
        f"the same DAG listing at once: {at_once['cpu']:.1f} s CPU over {at_once['wall']:.1f} s"
    )
