"""
A real deployment: the deferrable example DAG survives a triggerer killed with SIGKILL while it waits.

Airflow's components run as separate processes on loopback, as an operator would start them (``airflow
scheduler``, ``airflow dag-processor``, ``airflow triggerer``, ``airflow api-server``), in a fresh home with
the embedded SQLite DB. The DevRev simulator runs in this test process (a thread); every component gets
the connection through ``AIRFLOW_CONN_DEVREV_DEFAULT``.

The session appears only some seconds after the run is triggered. While ``DevRevSessionTrigger`` polls for
it, the triggerer is SIGKILLed (with every process it started) and a new triggerer is started: Airflow must
hand the orphaned trigger to the new one, which rebuilds it from its stored arguments and polls until the
session appears; the downstream task must then receive exactly the session the simulator served. Finally
everything the deployment wrote (every file under its home, every table of its DB, trigger arguments
read as Airflow reads them) is searched for the API token: it must appear nowhere.

Run it alone with ``pytest -m deployment -s`` (``-s`` shows the figures). When ``DEVREV_DEPLOYMENT_FIGURES``
names a file, the figures are also written there as JSON.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import psutil
import pytest
from cryptography.fernet import Fernet, InvalidToken

from airflow_provider_devrev.testing import DevRevSimulator, RecordedRequest


def _airflow_major() -> int:
    """The installed Airflow's major version, read without importing Airflow into this process."""
    return int(importlib.metadata.version("apache-airflow").split(".")[0])


pytestmark = [
    pytest.mark.deployment,
    pytest.mark.skipif(_airflow_major() < 3, reason="starts Airflow 3's components (api-server, dag-processor)"),
]

REPO = Path(__file__).resolve().parents[2]
AIRFLOW = str(Path(sys.executable).with_name("airflow"))

DAG_ID = "example_devrev_session_deferrable"
TASKS = ("wait_for_session", "get_session", "report")
GET = "/observability.sessions.get"
VERSION_KEY = "com.acme.shop@5.2.0"

#: Seconds from adding the session to DevRev "having" it. On a 2-core machine the run is triggered ~6 s
#: after adding it, the trigger polls ~6 s later, and the new triggerer polls ~5 s after the kill: 30 s
#: leaves the rebuilt trigger a dozen seconds of real waiting (404s) before the session appears.
APPEAR_AFTER_SECONDS = 30.0
#: Seconds without a heartbeat after which a triggerer is presumed dead and its triggers go to another
#: triggerer (the default, 30, would make recovery take 30+ s). Five heartbeats, with the one below.
TRIGGERER_HEARTBEAT_SECONDS = 1
TRIGGERER_HEALTH_CHECK_THRESHOLD = 5
#: Bounds for each wait, in seconds; a normal run takes about a minute in all.
CLI_TIMEOUT = 90.0
STARTUP_TIMEOUT = 90.0
DEFER_TIMEOUT = 60.0
RECOVER_TIMEOUT = 45.0
RUN_TIMEOUT = APPEAR_AFTER_SECONDS + 60.0
STOP_TIMEOUT = 20.0
POLL_EVERY = 0.5

T = TypeVar("T")


def wait_for(what: str, condition: Callable[[], T], *, timeout: float, deployment: Deployment | None = None) -> T:
    """
    Poll ``condition`` every half second until it returns something truthy; return that.

    :param what: what is awaited, for the failure message.
    :param condition: the check; a falsy result means "not yet".
    :param timeout: seconds before failing, with the tail of every component's output.
    :param deployment: checked for crashed components between polls, so a crash fails at once.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if deployment is not None:
            deployment.check_alive()
        if time.monotonic() > deadline:
            tails = deployment.tails() if deployment is not None else ""
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}\n{tails}")
        time.sleep(POLL_EVERY)


# -- processes ----------------------------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def session_members(sid: int) -> list[psutil.Process]:
    """
    Every live process of the session ``sid``.

    Each component is started as the leader of a session of its own (``start_new_session=True``). Airflow
    moves task processes into process groups of their own, and orphans are re-parented, but all of them
    stay in the session: the session is "every process this component started".
    """
    members = []
    for proc in psutil.process_iter(["status"]):
        with suppress(psutil.Error, OSError):
            if proc.info["status"] != psutil.STATUS_ZOMBIE and os.getsid(proc.pid) == sid:
                members.append(proc)
    return members


@dataclass
class Component:
    """One Airflow process started by the test, the leader of its own session; output in ``output``."""

    name: str
    popen: subprocess.Popen[bytes]
    output: Path
    expected_dead: bool = False
    #: Leader reaped and session empty: the ids may belong to someone else now, never signal them again.
    gone: bool = False

    @property
    def sid(self) -> int:
        return self.popen.pid

    def tail(self, lines: int = 30) -> str:
        text = self.output.read_text(errors="replace") if self.output.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def members(self) -> list[psutil.Process]:
        """The component's live processes (its session)."""
        if self.gone:
            return []
        leader_reaped = self.popen.poll() is not None
        members = session_members(self.sid)
        self.gone = leader_reaped and not members
        return members

    def signal(self, sig: signal.Signals) -> None:
        """Send ``sig`` to the component's process group, and to members of its session in other groups."""
        members = self.members()
        if self.gone:
            return
        with suppress(ProcessLookupError, PermissionError):
            os.killpg(self.sid, sig)
        for proc in members:
            # Not twice to the same process: a second SIGTERM makes Airflow skip its graceful shutdown.
            with suppress(psutil.Error, OSError):
                if os.getpgid(proc.pid) != self.sid:
                    proc.send_signal(sig)

    def kill(self) -> float:
        """
        SIGKILL the component and everything it started at once (as the OOM killer would), and reap it.

        :return: when the signal was sent (``time.monotonic()``, the simulator's clock).
        """
        self.expected_dead = True
        killed_at = time.monotonic()
        self.signal(signal.SIGKILL)
        self.popen.wait(timeout=STOP_TIMEOUT)
        wait_for(f"every process of {self.name} to die", lambda: not self.members(), timeout=STOP_TIMEOUT)
        return killed_at


@dataclass
class Deployment:
    """
    One Airflow deployment on this machine: its home, its environment, the components started in it.

    Nothing here imports Airflow: this test process has its own in-process Airflow set-up (from
    ``tests/conftest.py``) that the deployment must neither use nor touch.
    """

    home: Path
    env: dict[str, str]
    api_port: int
    fernet_key: str
    components: list[Component] = field(default_factory=list)
    created_at: float = field(default_factory=time.monotonic)

    @property
    def db(self) -> Path:
        return self.home / "airflow.db"

    def start(self, name: str, *args: str) -> Component:
        """Start ``airflow <args>`` as a session leader; stdout and stderr go to ``<home>/components/<name>.out``."""
        output = self.home / "components" / f"{name}.out"
        output.parent.mkdir(exist_ok=True)
        with output.open("wb") as out:
            popen = subprocess.Popen(
                [AIRFLOW, *args],
                env=self.env,
                cwd=self.home,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        component = Component(name, popen, output)
        self.components.append(component)
        return component

    def cli(self, *args: str) -> str:
        """Run one ``airflow`` CLI command to completion and return its output; fail showing it otherwise."""
        done = subprocess.run(
            [AIRFLOW, *args],
            env=self.env,
            cwd=self.home,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=CLI_TIMEOUT,
            start_new_session=True,
        )
        if done.returncode != 0:
            output = (done.stdout + done.stderr)[-4000:]
            pytest.fail(f"`airflow {' '.join(args)}` exited with {done.returncode}:\n{output}")
        return done.stdout

    def query(self, sql: str, *params: Any) -> list[dict[str, Any]]:
        """Rows of a read-only query on the deployment's DB, in a short transaction so as not to block writers."""
        if not self.db.exists():
            return []
        con = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=10)
        con.row_factory = sqlite3.Row
        try:
            return [dict(row) for row in con.execute(sql, params)]
        finally:
            con.close()

    def health(self) -> dict[str, Any] | None:
        """The API server's ``/api/v2/monitor/health`` answer (no auth needed), or None while it is not up."""
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never a proxy
        try:
            with opener.open(f"http://127.0.0.1:{self.api_port}/api/v2/monitor/health", timeout=5) as response:
                return json.loads(response.read())
        except (OSError, ValueError):
            return None

    def check_alive(self) -> None:
        """Fail at once, showing its output, when a component that should be running has exited."""
        for component in self.components:
            if not component.expected_dead and component.popen.poll() is not None:
                pytest.fail(f"{component.name} exited with {component.popen.returncode}\n{self.tails()}")

    def tails(self) -> str:
        """The last lines of every component's output, for failure messages."""
        return "\n".join(f"----- {c.name} ({c.output}) -----\n{c.tail()}" for c in self.components)

    def stop_all(self) -> None:
        """SIGTERM every component (each with its whole session), wait, then SIGKILL what is left. Idempotent."""
        for component in self.components:
            component.expected_dead = True
            component.signal(signal.SIGTERM)
        _, alive = psutil.wait_procs(self.leftovers(), timeout=STOP_TIMEOUT)
        if alive:
            for component in self.components:
                component.signal(signal.SIGKILL)
            psutil.wait_procs(alive, timeout=STOP_TIMEOUT)
        for component in self.components:
            with suppress(subprocess.TimeoutExpired):
                component.popen.wait(timeout=STOP_TIMEOUT)

    def leftovers(self) -> list[psutil.Process]:
        """Processes of any component still alive."""
        return [proc for component in self.components for proc in component.members()]

    # -- the dag run, read from the DB --------------------------------------------------------------------

    def run_state(self, run_id: str) -> str | None:
        rows = self.query("SELECT state FROM dag_run WHERE dag_id = ? AND run_id = ?", DAG_ID, run_id)
        return rows[0]["state"] if rows else None

    def task_states(self, run_id: str) -> dict[str, str | None]:
        rows = self.query("SELECT task_id, state FROM task_instance WHERE dag_id = ? AND run_id = ?", DAG_ID, run_id)
        return {row["task_id"]: row["state"] for row in rows}

    def xcom(self, run_id: str, task_id: str) -> Any:
        """A task's ``return_value`` XCom (JSON; possibly stored as a JSON string of JSON)."""
        [row] = self.query(
            "SELECT value FROM xcom WHERE dag_id = ? AND run_id = ? AND task_id = ? AND key = 'return_value'",
            DAG_ID,
            run_id,
            task_id,
        )
        value = row["value"]
        while isinstance(value, bytes | str):
            value = json.loads(value)
        return value

    def trigger_kwargs(self, stored: str) -> str | None:
        """
        A trigger's stored arguments as Airflow reads them: JSON as it is, else Fernet-decrypted.

        Airflow 3.3 stores the arguments of a trigger deferred through the execution API unencrypted (the
        task runner does not encrypt them, and the API server stores what it gets), and encrypts those it
        writes itself: both forms are read here, as ``Trigger._decrypt_kwargs`` does. None if unreadable.
        """
        if stored.startswith("{"):
            return stored
        try:
            return Fernet(self.fernet_key.encode()).decrypt(stored.encode()).decode()
        except (InvalidToken, ValueError):
            return None

    def dump_db(self) -> dict[str, str]:
        """Every table of the DB as text (``table -> rows``), plus the trigger arguments as Airflow reads them."""
        dumped = {}
        for table in [row["name"] for row in self.query("SELECT name FROM sqlite_master WHERE type = 'table'")]:
            rows = self.query(f'SELECT * FROM "{table}"')
            dumped[table] = "\n".join(map(repr, rows))
            if table == "trigger":
                dumped["trigger, kwargs as read"] = "\n".join(str(self.trigger_kwargs(row["kwargs"])) for row in rows)
        return dumped


def count_in_files(root: Path, needle: str) -> dict[str, int]:
    """``relative path -> occurrences of needle`` for every file under ``root``, read as bytes (the DB too)."""
    raw = needle.encode()
    files = sorted(path for path in root.rglob("*") if path.is_file() and not path.is_symlink())
    return {str(path.relative_to(root)): path.read_bytes().count(raw) for path in files}


# -- fixtures ----------------------------------------------------------------------------------------------


@pytest.fixture
def sim() -> Iterator[DevRevSimulator]:
    """The DevRev simulator, with a long distinctive token so that searching for it means something."""
    with DevRevSimulator(token="deploy-secret-" + secrets.token_hex(16), port=0) as simulator:
        yield simulator


@pytest.fixture
def deployment(tmp_path: Path, sim: DevRevSimulator) -> Iterator[Deployment]:
    """A fresh Airflow home with a migrated DB; every component started in it is stopped afterwards, always."""
    home = tmp_path / "airflow"
    dags = home / "dags"
    dags.mkdir(parents=True)
    for source in sorted((REPO / "dags" / "examples").glob("*.py")):
        shutil.copy(source, dags / source.name)

    api_port = free_port()
    fernet_key = Fernet.generate_key().decode()
    # The deployment's own environment: nothing Airflow- or pytest-related inherited from this process.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "_AIRFLOW", "PYTEST_"))}
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "4",
            # Secrets every component must share: the Fernet key encrypts secrets in the DB (known here so the
            # test can read encrypted trigger arguments); the JWT secret signs the tokens workers present to the
            # API server.
            "AIRFLOW__CORE__FERNET_KEY": fernet_key,
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
            "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
            # The API server on loopback only, on a free port; workers reach its execution API there.
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(api_port),
            "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{api_port}",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
            # A new triggerer adopts the triggers of one whose heartbeat is older than the threshold.
            "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": str(TRIGGERER_HEARTBEAT_SECONDS),
            "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": str(TRIGGERER_HEALTH_CHECK_THRESHOLD),
            "AIRFLOW_CONN_DEVREV_DEFAULT": sim.connection_json(),
            "DEVREV_EXAMPLE_POKE_INTERVAL": "1",
            "DEVREV_EXAMPLE_SENSOR_TIMEOUT": "180",
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
        }
    )
    deployment = Deployment(home=home, env=env, api_port=api_port, fernet_key=fernet_key)
    try:
        deployment.cli("db", "migrate")
        yield deployment
    finally:
        deployment.stop_all()
        leftovers = deployment.leftovers()
        assert not leftovers, f"processes left behind: {leftovers}"


# -- the test ----------------------------------------------------------------------------------------------


def test_a_deferred_sensor_survives_a_triggerer_killed_with_sigkill(sim: DevRevSimulator, deployment: Deployment):
    d = deployment

    # 1. Start the deployment; wait until every component reports healthy and the DAG is parsed.
    d.start("scheduler", "scheduler", "--skip-serve-logs")
    d.start("dag-processor", "dag-processor")
    first_triggerer = d.start("triggerer-1", "triggerer", "--skip-serve-logs")
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
    ready_at = time.monotonic()

    # 2. A session DevRev will have only later; trigger the deferrable example DAG for it.
    session = sim.add_session(
        sim.make_session(
            "mobile",
            platform="android",
            session_id="deploy-" + secrets.token_hex(8),
            is_crash=True,
            is_anr=False,
            rage_tap=False,
        ),
        version_key=VERSION_KEY,
        appear_after_seconds=APPEAR_AFTER_SECONDS,
    )
    appears_at = time.monotonic() + APPEAR_AFTER_SECONDS
    session_id = session["session_id"]
    run_id = "deploy-" + secrets.token_hex(6)
    conf = {"platform": "android", "session_id": session_id, "version_key": VERSION_KEY}
    d.cli("dags", "unpause", DAG_ID)
    d.cli("dags", "trigger", DAG_ID, "--run-id", run_id, "--conf", json.dumps(conf))
    triggered_at = time.monotonic()

    def checks() -> list[RecordedRequest]:
        """The requests for our session: the sensor's checks, then the operator's fetch."""
        return sim.requests_for(path=GET, session_id=session_id)

    # 3. The sensor checked once on the worker and deferred, and the trigger has polled at least once. Keep
    # what the trigger table holds now: the row is deleted once the trigger has fired.
    trigger_rows: list[dict[str, Any]] = []

    def deferred_and_polled() -> bool:
        answered = [r for r in checks() if r.status is not None]  # a poll may be in flight
        if d.task_states(run_id).get("wait_for_session") != "deferred" or len(answered) < 2:
            return False
        trigger_rows[:] = d.query("SELECT * FROM trigger WHERE triggerer_id IS NOT NULL")
        return bool(trigger_rows)

    wait_for("the sensor to defer and its trigger to poll", deferred_and_polled, timeout=DEFER_TIMEOUT, deployment=d)
    assert 200 not in {r.status for r in checks()}, "the session appeared before the triggerer was killed"
    [first_job_id] = {row["triggerer_id"] for row in trigger_rows}

    # 4. Kill the triggerer and everything it started, mid-wait; start a new one.
    killed_at = first_triggerer.kill()
    requests_before_kill = len([r for r in sim.requests if r.time <= killed_at])
    d.start("triggerer-2", "triggerer", "--skip-serve-logs")

    # 5. The new triggerer adopts the trigger and polls; the run succeeds once the session appears.
    first_poll_after_kill = wait_for(
        "the new triggerer to poll DevRev",
        lambda: next((r for r in checks() if r.time > killed_at), None),
        timeout=RECOVER_TIMEOUT,
        deployment=d,
    )

    def finished() -> str | None:
        state = d.run_state(run_id)
        return state if state in ("success", "failed") else None

    final_state = wait_for(f"dag run {run_id} to finish", finished, timeout=RUN_TIMEOUT, deployment=d)
    finished_at = time.monotonic()
    states = d.task_states(run_id)
    assert final_state == "success", f"the run {final_state}: {states}\n{d.tails()}"
    assert states == dict.fromkeys(TASKS, "success")

    # Every task got exactly the session DevRev served; the downstream one through XCom.
    assert d.xcom(run_id, "wait_for_session") == session
    assert d.xcom(run_id, "get_session") == session
    report = d.xcom(run_id, "report")
    assert report["session"] == session
    assert report["problems"] == ["is_crash"]

    # The checks: one on the worker, the first triggerer's polls (404) until the kill, the new triggerer's
    # polls until one found the session (200), then the operator's fetch (200). Nothing else.
    requests = checks()
    found = next(i for i, r in enumerate(requests) if r.status == 200)
    sensor_checks, fetches = requests[: found + 1], requests[found + 1 :]
    before_kill = [r for r in sensor_checks if r.time <= killed_at]
    after_kill = [r for r in sensor_checks if r.time > killed_at]
    assert len(before_kill) >= 2
    assert {r.status for r in before_kill} <= {404, None}, "None: a poll in flight when the triggerer died"
    assert after_kill[0].time == first_poll_after_kill.time
    # The rebuilt trigger really waited: it polled (404) before the session appeared, then found it.
    assert len(after_kill) >= 2, "the session appeared before the new triggerer polled; raise APPEAR_AFTER_SECONDS"
    assert [r.status for r in after_kill[:-1]] == [404] * (len(after_kill) - 1)
    assert [r.status for r in fetches] == [200]
    assert len(sim.requests) == len(requests), "requests other than the session checks"
    job_ids = [row["id"] for row in d.query("SELECT id FROM job WHERE job_type = 'TriggererJob' ORDER BY id")]
    assert job_ids[0] == first_job_id
    [second_job_id] = job_ids[1:]

    # 6. Stop everything (so every buffer is on disk), then search everything the deployment wrote.
    d.stop_all()
    token = sim.token
    token_in_files = {path: n for path, n in count_in_files(d.home, token).items() if n}
    tables = d.dump_db()
    trigger_as_stored = "\n".join(f"{row!r}\n{d.trigger_kwargs(row['kwargs'])}" for row in trigger_rows)
    assert not token_in_files, f"the token is in files of the deployment: {token_in_files}"
    assert not [table for table, text in tables.items() if token in text], "the token is in the metadata DB"
    assert token not in trigger_as_stored, "the token is in the trigger's stored arguments"

    # The search read what matters: the logs of the three tasks and of the trigger in both triggerers,
    # the trigger's arguments as stored (and readable), the XComs and the rendered fields.
    session_in_files = count_in_files(d.home, session_id)
    run_logs = f"logs/dag_id={DAG_ID}/run_id={run_id}"
    for task_id in TASKS:
        assert session_in_files.get(f"{run_logs}/task_id={task_id}/attempt=1.log"), f"no log of {task_id}"
    sensor_log = f"{run_logs}/task_id=wait_for_session/attempt=1.log"
    assert f"{sensor_log}.trigger.{first_job_id}.log" in session_in_files, "no log of the first triggerer"
    assert session_in_files.get(f"{sensor_log}.trigger.{second_job_id}.log"), "no log of the new triggerer"
    assert f'"session_id": "{session_id}"' in trigger_as_stored, "the trigger's stored arguments are unreadable"
    for table in ("trigger", "xcom", "rendered_task_instance_fields", "log", "task_instance"):
        assert table in tables, table
    for table in ("xcom", "rendered_task_instance_fields"):
        assert session_id in tables[table], f"the session is not in {table}"

    figures = {
        "test_wall_time_s": round(time.monotonic() - d.created_at, 1),
        "deployment_ready_s": round(ready_at - d.created_at, 1),
        "dag_run_wall_time_s": round(finished_at - triggered_at, 1),
        "kill_after_trigger_s": round(killed_at - triggered_at, 1),
        "time_to_recover_s": round(first_poll_after_kill.time - killed_at, 1),
        "session_appeared_after_kill_s": round(appears_at - killed_at, 1),
        "requests_total": len(sim.requests),
        "requests_before_kill": requests_before_kill,
        "requests_after_kill": len(sim.requests) - requests_before_kill,
        "worker_checks": 1,
        "first_triggerer_polls": len(before_kill) - 1,
        "new_triggerer_polls": len(after_kill),
        "operator_fetches": len(fetches),
        "triggerer_heartbeat_s": TRIGGERER_HEARTBEAT_SECONDS,
        "triggerer_health_check_threshold_s": TRIGGERER_HEALTH_CHECK_THRESHOLD,
        "files_searched": len(session_in_files),
        "db_tables_searched": len(tables),
        "token_hits": 0,
        "trigger_kwargs_encrypted_in_db": not all(row["kwargs"].startswith("{") for row in trigger_rows),
    }
    print("\ndeployment figures:", json.dumps(figures, indent=2))
    if os.environ.get("DEVREV_DEPLOYMENT_FIGURES"):
        Path(os.environ["DEVREV_DEPLOYMENT_FIGURES"]).write_text(json.dumps(figures, indent=2) + "\n")
