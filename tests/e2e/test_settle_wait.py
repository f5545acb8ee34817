"""
End to end: a non-deferrable ``ListSessionsOperator`` waiting for ``settle`` runs twice, not once per scheduler
loop, counted where Airflow decides it: ``airflow dags test`` (the CLI, in a process of its own) holds a task
until its reschedule date exactly where the scheduler does (``ReadyToRescheduleDep``), on every leg.

Each test gets its own Airflow home and SQLite DB (not the suite's), the simulator on loopback on the real clock,
and the connection through ``AIRFLOW_CONN_DEVREV_DEFAULT``. The waits are the settle's own fifteen seconds.
"""

from __future__ import annotations

import json
import os
import re
import resource
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_devrev.testing import DevRevSimulator

pytestmark = pytest.mark.e2e

DAG_FILE = Path(__file__).resolve().parent / "dags" / "devrev_e2e_settle.py"
DAG_ID = "devrev_e2e_settle"
#: Longer than the gap between the task that fixes the interval's end and the export's first run, which under
#: `dags test` on a loaded 2-core machine reached 5 s on 3.0.6 (each task start builds Airflow's in-process API):
#: a first run after the moment lists at once and tests nothing.
SETTLE = timedelta(seconds=15)
VERSION_KEY = "com.acme.shop@5.2.0"
LIST = "/observability.sessions.list"
AIRFLOW = str(Path(sys.executable).with_name("airflow"))
#: The line ``dags test`` logs as it starts the export: ``[<time>+0000] ...`` on 2.11 and 3.0, ``<time>Z ...`` on 3.3.
STARTED = r"^\[?(\d{4}-\d\d-\d\dT[\d:.]+)(?:\+0000\]|Z) .*\[DAG TEST\] starting task_id=export "
#: Deadline of one CLI command: Airflow's start-up on a loaded 2-core machine, plus the settle.
CLI_TIMEOUT = 300


@dataclass(frozen=True)
class Outcome:
    """What one ``airflow dags test`` of the settle DAG did, read from its output and its DB."""

    returncode: int
    output: str
    #: ``(try_number, state)`` of the export task.
    task: tuple[int, str]
    #: The reschedule dates Airflow recorded for it, one row per reschedule.
    reschedules: list[datetime]
    #: CPU seconds (user + system) of the CLI process and its children, and its wall-clock seconds.
    cpu: float
    wall: float

    @property
    def starts(self) -> list[datetime]:
        """When each run of the export started, from the line ``dags test`` logs once per run (2.11 logs the
        task's own lines twice), to the millisecond."""
        return [datetime.fromisoformat(stamp).replace(tzinfo=UTC) for stamp in re.findall(STARTED, self.output, re.M)]


class Home:
    """A fresh Airflow home with a migrated SQLite DB and the settle DAG, for CLI commands in other processes."""

    def __init__(self, root: Path, sim: DevRevSimulator) -> None:
        self.root = root
        dags = root / "dags"
        dags.mkdir(parents=True)
        shutil.copy(DAG_FILE, dags / DAG_FILE.name)
        inherited = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "_AIRFLOW", "PYTEST_"))}
        self.env = {
            **inherited,
            "AIRFLOW_HOME": str(root),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{root}/airflow.db",
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "DEVREV_E2E_SETTLE_SECONDS": str(SETTLE.total_seconds()),
            "AIRFLOW_CONN_DEVREV_DEFAULT": sim.connection_json(),
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
        }
        self.airflow("db", "migrate")
        # Airflow 3.0-3.2's `dags test` runs the DAG stored in the DB (3.3 stores it itself).
        self.airflow("dags", "reserialize")

    def airflow(self, *args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [AIRFLOW, *args],
            env=self.env,
            cwd=self.root,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=CLI_TIMEOUT,
        )
        assert done.returncode == 0 or args[:2] == ("dags", "test"), done.stdout[-3000:] + done.stderr[-3000:]
        return done

    def rows(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        with sqlite3.connect(f"file:{self.root / 'airflow.db'}?mode=ro", uri=True) as con:
            return con.execute(sql, params).fetchall()

    def test_dag(self, conf: dict[str, str]) -> Outcome:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.monotonic()
        done = self.airflow("dags", "test", DAG_ID, "-c", json.dumps(conf))
        wall = time.monotonic() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        [task] = self.rows("SELECT try_number, state FROM task_instance WHERE task_id = 'export'")
        # The DB's dates are naive UTC; only the export can reschedule.
        dates = self.rows("SELECT reschedule_date FROM task_reschedule ORDER BY id")
        return Outcome(
            returncode=done.returncode,
            output=done.stdout + done.stderr,
            task=(int(task[0]), str(task[1])),
            reschedules=[datetime.fromisoformat(str(date)).replace(tzinfo=UTC) for (date,) in dates],
            cpu=(after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
            wall=wall,
        )


@pytest.fixture
def sim() -> Iterator[DevRevSimulator]:
    """The simulator on the wall clock, which the DB's dates (when the run started) are on too."""
    with DevRevSimulator(port=0, clock=time.time, seed_data=False) as simulator:
        yield simulator


def add(sim: DevRevSimulator, session_id: str, created: datetime) -> None:
    session = sim.make_session("mobile", platform="android", session_id=session_id, created_at=created)
    sim.add_session(session, version_key=VERSION_KEY)


def test_a_non_deferrable_export_runs_once_to_learn_it_must_wait_and_once_to_list(sim, tmp_path):
    now = datetime.now(UTC)
    add(sim, "in-interval", now - timedelta(minutes=30))
    add(sim, "too-old", now - timedelta(hours=3))
    home = Home(tmp_path / "airflow", sim)
    output = tmp_path / "export.jsonl"

    outcome = home.test_dag({"after": (now - timedelta(hours=1)).isoformat(), "output": str(output)})

    assert outcome.returncode == 0, outcome.output[-3000:]
    # One reschedule (the first try found the interval unsettled), then the listing: two runs in all. Before
    # Airflow honoured the date for this operator, 2.11.2 and 3.0.6 ran it again at once, hundreds of times.
    assert outcome.task == (1, "success"), outcome.output[-3000:]
    starts, reschedules = outcome.starts, outcome.reschedules
    assert len(starts) == 2, f"{len(starts)} runs, {len(reschedules)} reschedules"
    assert len(reschedules) == 1
    # Held until its date: the second run did not start before it (a log line's millisecond, truncated).
    assert starts[1] >= reschedules[0] - timedelta(milliseconds=1), (starts, reschedules)
    # It listed once the interval had settled (the date it was rescheduled for), and found what it holds.
    listed = [request.time for request in sim.requests_for(path=LIST)]
    assert listed
    assert min(listed) >= outcome.reschedules[0].timestamp()
    assert [json.loads(line)["session_id"] for line in output.read_text().splitlines()] == ["in-interval"]
    print(f"\nsettle wait under `airflow dags test`: {outcome.cpu:.1f} s CPU over {outcome.wall:.1f} s")


def test_a_passed_moment_lists_at_once_without_a_reschedule(sim, tmp_path):
    """The control: an interval settled long ago lists on the first try (a backfill), nothing held."""
    now = datetime.now(UTC)
    add(sim, "old", now - timedelta(days=1, hours=12))
    home = Home(tmp_path / "airflow", sim)
    output = tmp_path / "export.jsonl"

    outcome = home.test_dag(
        {
            "after": (now - timedelta(days=2)).isoformat(),
            "before": (now - timedelta(days=1)).isoformat(),
            "output": str(output),
        }
    )

    assert outcome.returncode == 0, outcome.output[-3000:]
    assert outcome.task == (1, "success")
    assert (len(outcome.starts), outcome.reschedules) == (1, [])
    assert [json.loads(line)["session_id"] for line in output.read_text().splitlines()] == ["old"]
    print(f"\nno wait under `airflow dags test`: {outcome.cpu:.1f} s CPU over {outcome.wall:.1f} s")
