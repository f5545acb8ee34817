"""
A real Airflow 3 deployment on this machine, for the deployment tests and the demos.

Airflow's components run as separate processes on loopback, as an operator would start them (``airflow
scheduler``, ``airflow dag-processor``, ``airflow triggerer``, ``airflow api-server``), in a fresh home with
the embedded SQLite DB. The DevRev simulator runs in the calling process (a thread); every component gets
the connection through ``AIRFLOW_CONN_DEVREV_DEFAULT``.

Nothing here imports Airflow or pytest: the calling process may have an Airflow set-up of its own (the test
suite's, from ``tests/conftest.py``) that the deployment must neither use nor touch, and
``scripts/demo_events.py`` runs it outside pytest. A failed wait or command raises :class:`DeploymentError`
(an ``AssertionError``, so pytest reports it as a test failure) with the tail of every component's output.
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
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import psutil
from cryptography.fernet import Fernet, InvalidToken

from airflow_provider_devrev.testing import DevRevSimulator, RecordedRequest

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_DAGS = REPO / "dags" / "examples"
AIRFLOW = str(Path(sys.executable).with_name("airflow"))

#: Seconds without a heartbeat after which a triggerer is presumed dead and its triggers go to another
#: triggerer (the default, 30, would make recovery take 30+ s). Five heartbeats, with the one below.
TRIGGERER_HEARTBEAT_SECONDS = 1
TRIGGERER_HEALTH_CHECK_THRESHOLD = 5
#: Bounds for each wait, in seconds.
CLI_TIMEOUT = 90.0
STARTUP_TIMEOUT = 90.0
STOP_TIMEOUT = 20.0
POLL_EVERY = 0.5


def airflow_major() -> int:
    """The installed Airflow's major version, read without importing Airflow into this process."""
    return int(importlib.metadata.version("apache-airflow").split(".")[0])


def airflow_version() -> tuple[int, int]:
    """The installed Airflow's (major, minor), read without importing Airflow into this process."""
    major, minor = importlib.metadata.version("apache-airflow").split(".")[:2]
    return int(major), int(minor)


class DeploymentError(AssertionError):
    """A component crashed, a command failed, or something awaited did not happen in time."""


def fail(message: str) -> NoReturn:
    raise DeploymentError(message)


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
            fail(f"timed out after {timeout:.0f} s waiting for {what}\n{tails}")
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
    #: What asks it to stop: SIGTERM for Airflow; PostgreSQL's "fast shutdown" is SIGINT (its SIGTERM waits
    #: for every client to disconnect).
    stop_signal: signal.Signals = signal.SIGTERM
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
    #: The DAG that ``run_state``, ``task_states`` and ``xcom`` read.
    dag_id: str = ""
    components: list[Component] = field(default_factory=list)
    created_at: float = field(default_factory=time.monotonic)

    @property
    def db(self) -> Path:
        return self.home / "airflow.db"

    def start(self, name: str, *args: str, env: Mapping[str, str] | None = None) -> Component:
        """Start ``airflow <args>`` as a session leader; stdout and stderr go to ``<home>/components/<name>.out``.

        :param env: more environment variables for this component only.
        """
        return self.spawn(name, [AIRFLOW, *args], env={**self.env, **(env or {})})

    def spawn(
        self,
        name: str,
        argv: list[str],
        *,
        env: Mapping[str, str] | None = None,
        user: str | None = None,
        stop_signal: signal.Signals = signal.SIGTERM,
    ) -> Component:
        """
        Start any server process as a component: a session leader, output in ``<home>/components/<name>.out``,
        stopped with the others.

        :param env: its whole environment (default: the deployment's).
        :param user: run it as this user (the caller must be root), e.g. PostgreSQL, which refuses root.
        :param stop_signal: the signal that asks it to stop.
        """
        output = self.home / "components" / f"{name}.out"
        output.parent.mkdir(exist_ok=True)
        with output.open("wb") as out:
            popen = subprocess.Popen(
                argv,
                env=dict(self.env if env is None else env),
                cwd=self.home if user is None else "/",
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                user=user,
            )
        component = Component(name, popen, output, stop_signal=stop_signal)
        self.components.append(component)
        return component

    def start_core(self, triggerer: str = "triggerer-1") -> Component:
        """
        Start the scheduler, the dag processor, a triggerer (named ``triggerer``) and the API server; wait
        until every component reports healthy and the dag processor has stored ``dag_id``.

        :return: the triggerer, so that a test can kill it.
        """
        self.start("scheduler", "scheduler", "--skip-serve-logs")
        self.start("dag-processor", "dag-processor")
        component = self.start(triggerer, "triggerer", "--skip-serve-logs")
        self.start("api-server", "api-server", "--host", "127.0.0.1", "--port", str(self.api_port), "--workers", "1")

        def all_healthy() -> dict[str, Any] | None:
            health = self.health()
            return health if health and all(part.get("status") == "healthy" for part in health.values()) else None

        wait_for("every component to report healthy", all_healthy, timeout=STARTUP_TIMEOUT, deployment=self)
        wait_for(
            f"the dag processor to store {self.dag_id}",
            lambda: self.query("SELECT dag_id FROM dag WHERE dag_id = ?", self.dag_id),
            timeout=STARTUP_TIMEOUT,
            deployment=self,
        )
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
        # Kept with the components' output: what a CLI command prints is searched for secrets too.
        (self.home / "components").mkdir(exist_ok=True)
        with (self.home / "components" / "cli.out").open("a") as log:
            log.write(f"$ airflow {args[0] if args else ''} ...\n{done.stdout}{done.stderr}")
        if done.returncode != 0:
            output = (done.stdout + done.stderr)[-4000:]
            fail(f"`airflow {' '.join(args)}` exited with {done.returncode}:\n{output}")
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
                fail(f"{component.name} exited with {component.popen.returncode}\n{self.tails()}")

    def tails(self) -> str:
        """The last lines of every component's output, for failure messages."""
        return "\n".join(f"----- {c.name} ({c.output}) -----\n{c.tail()}" for c in self.components)

    def stop_all(self) -> None:
        """SIGTERM every component (each with its whole session), wait, then SIGKILL what is left. Idempotent."""
        self.stop(self.components)

    def stop(self, components: Iterable[Component]) -> None:
        """Ask ``components`` to stop (their ``stop_signal``, to each whole session), wait, then SIGKILL what is
        left. Idempotent."""
        components = list(components)
        for component in components:
            component.expected_dead = True
            component.signal(component.stop_signal)
        _, alive = psutil.wait_procs(self.leftovers(components), timeout=STOP_TIMEOUT)
        if alive:
            for component in components:
                component.signal(signal.SIGKILL)
            psutil.wait_procs(alive, timeout=STOP_TIMEOUT)
        for component in components:
            with suppress(subprocess.TimeoutExpired):
                component.popen.wait(timeout=STOP_TIMEOUT)

    def leftovers(self, components: Iterable[Component] | None = None) -> list[psutil.Process]:
        """Processes of any component (of ``components``, default all) still alive."""
        chosen = self.components if components is None else components
        return [proc for component in chosen for proc in component.members()]

    # -- the dag run, read from the DB --------------------------------------------------------------------

    def run_state(self, run_id: str) -> str | None:
        rows = self.query("SELECT state FROM dag_run WHERE dag_id = ? AND run_id = ?", self.dag_id, run_id)
        return rows[0]["state"] if rows else None

    def task_states(self, run_id: str) -> dict[str, str | None]:
        rows = self.query(
            "SELECT task_id, state FROM task_instance WHERE dag_id = ? AND run_id = ?", self.dag_id, run_id
        )
        return {row["task_id"]: row["state"] for row in rows}

    def xcom(self, run_id: str, task_id: str) -> Any:
        """A task's ``return_value`` XCom (JSON; possibly stored as a JSON string of JSON)."""
        [row] = self.query(
            "SELECT value FROM xcom WHERE dag_id = ? AND run_id = ? AND task_id = ? AND key = 'return_value'",
            self.dag_id,
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


# -- a deployment's life -------------------------------------------------------------------------------------


def deployment_env(home: Path, dags: Path, api_port: int, fernet_key: str, sim: DevRevSimulator) -> dict[str, str]:
    """The deployment's own environment: nothing Airflow- or pytest-related inherited from this process."""
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
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
        }
    )
    return env


@contextmanager
def deployment_in(
    home: Path,
    sim: DevRevSimulator,
    *,
    dag_id: str,
    dag_files: Iterable[str] | None = None,
    env: Mapping[str, str] | None = None,
) -> Iterator[Deployment]:
    """
    A fresh Airflow home at ``home`` with a migrated DB; every component started in it is stopped on exit,
    always, and no process of theirs may be left behind.

    :param dag_id: the DAG the deployment's run and task queries read.
    :param dag_files: names of the files of ``dags/examples`` to deploy; all of them when ``None``.
    :param env: more environment variables for every component (e.g. the example DAGs' poll intervals).
    """
    dags = home / "dags"
    dags.mkdir(parents=True)
    sources = sorted(EXAMPLE_DAGS.glob("*.py")) if dag_files is None else [EXAMPLE_DAGS / n for n in dag_files]
    for source in sources:
        shutil.copy(source, dags / source.name)
    api_port = free_port()
    fernet_key = Fernet.generate_key().decode()
    full_env = {**deployment_env(home, dags, api_port, fernet_key, sim), **(env or {})}
    deployment = Deployment(home=home, env=full_env, api_port=api_port, fernet_key=fernet_key, dag_id=dag_id)
    try:
        deployment.cli("db", "migrate")
        yield deployment
    finally:
        deployment.stop_all()
        leftovers = deployment.leftovers()
        if leftovers:
            fail(f"processes left behind: {leftovers}")


# -- the crash triage example (dags/examples/example_devrev_crash_triage.py) ---------------------------------

TRIAGE_DAG_ID = "example_devrev_crash_triage"
TRIAGE_DAG_FILE = "example_devrev_crash_triage.py"
TRIAGE_TASK = "triage"
LIST = "/observability.sessions.list"


def triage_env(poll_interval: float) -> dict[str, str]:
    """Environment for a deployment of the triage DAG: its watch polls every ``poll_interval`` seconds, and
    the dag processor re-parses every 5 s, since a watcher starts only at the first parse after unpausing."""
    return {
        "DEVREV_EXAMPLE_WATCH_INTERVAL": str(poll_interval),
        "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "5",
    }


def list_polls(sim: DevRevSimulator, *, after: float | None = None) -> list[RecordedRequest]:
    """The watch's answered ``sessions.list`` requests (after ``after``, the simulator's clock), in order."""
    return [
        r
        for r in sim.requests_for(path=LIST)
        if r.method == "POST" and r.status is not None and (after is None or r.time > after)
    ]


@dataclass(frozen=True)
class TriageRun:
    """One run of the triage DAG, read from the deployment's DB."""

    run_id: str
    state: str | None
    end_date: str | None
    #: The session ids the triage task returned (its XCom), in order; empty until it succeeded.
    triaged: tuple[str, ...]


def triage_runs(d: Deployment) -> list[TriageRun]:
    """Every run of the triage DAG, oldest first, with what its task triaged."""
    runs = d.query(
        "SELECT run_id, state, end_date FROM dag_run WHERE dag_id = ? ORDER BY id",
        TRIAGE_DAG_ID,
    )
    rows = d.query(
        "SELECT run_id, value FROM xcom WHERE dag_id = ? AND task_id = ? AND key = 'return_value'",
        TRIAGE_DAG_ID,
        TRIAGE_TASK,
    )
    returned = {row["run_id"]: _json_value(row["value"]) for row in rows}
    return [
        TriageRun(
            run["run_id"],
            run["state"],
            run["end_date"],
            tuple(item["session_id"] for item in returned.get(run["run_id"]) or ()),
        )
        for run in runs
    ]


def triaged_ids(d: Deployment) -> list[str]:
    """Every session id triaged by a finished, successful run, one entry per triage (repeats kept)."""
    return [sid for run in triage_runs(d) if run.state == "success" for sid in run.triaged]


def asset_event_ids(d: Deployment) -> list[str]:
    """The session id of every event of the watched asset, one entry per event (repeats kept)."""
    rows = d.query("SELECT extra FROM asset_event ORDER BY id")
    return [str(_json_value(row["extra"]).get("payload", {}).get("session_id")) for row in rows]


def _json_value(value: Any) -> Any:
    """A JSON column's value (possibly stored as a JSON string of JSON)."""
    while isinstance(value, bytes | str):
        value = json.loads(value)
    return value
