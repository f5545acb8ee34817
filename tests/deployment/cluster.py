"""
A distributed Airflow deployment on this machine, as teams run it: the harness of ``harness.py`` with its
database, broker and object store as real servers.

Every server listens on 127.0.0.1 on a free port and is a :class:`~tests.deployment.harness.Component`
(its own session, stopped by pid with the others, also on failure):

- **PostgreSQL** (Debian's server) as the metadata DB and the Celery result backend, in a fresh data
  directory per run. PostgreSQL refuses to run as root: as root the harness runs it as the ``postgres``
  system user (which Debian's package creates), in a temporary folder that user owns.
- **Redis** (``redis-server``, no persistence) as the Celery broker.
- **moto** in server mode as the S3-compatible object store, reached by Airflow through the Amazon provider
  as ``s3://aws_default@<bucket>/...``.
- Airflow 3.3 with the **CeleryExecutor**: ``api-server``, ``scheduler``, ``dag-processor``, two
  ``triggerer``s and two ``celery worker``s, with a Fernet key; the DevRev connection (and ``aws_default``)
  stored encrypted in the metadata DB by ``airflow connections add``, not in the environment.

Each Airflow component gets its name as its hostname (``[core] hostname_callable`` reads
``DEVREV_CLUSTER_HOST``), so the ``job`` rows say which triggerer holds a trigger and ``task_instance.hostname``
which worker ran a task. ``DEVREV_CLUSTER_QUEUES`` (task id -> Celery queue, applied by a cluster policy at
parse time) pins tasks to one worker: each worker listens to ``default`` and to a queue named after it.

Missing servers fail at once with what to install (``scripts/system_deps.sh`` installs them as root). Like
the harness, nothing here imports Airflow; the drivers (psycopg2, redis, boto3) are imported where used,
since only the 3.3 leg installs them.
"""

from __future__ import annotations

import json
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet

from airflow_provider_devrev.testing import DevRevSimulator
from tests.deployment.harness import (
    CLI_TIMEOUT,
    EXAMPLE_DAGS,
    Component,
    Deployment,
    deployment_env,
    fail,
    free_port,
    wait_for,
)

CLUSTER_DAGS = Path(__file__).resolve().parent / "dags"
#: The unprivileged user PostgreSQL runs as when the harness is root.
PG_USER = "postgres"
#: The database role and name Airflow uses (trust authentication on loopback: a throwaway server).
PG_ROLE = "airflow"
BUCKET = "devrev-exports"
WORKERS = ("worker-1", "worker-2")
TRIGGERERS = ("triggerer-1", "triggerer-2")
#: Seconds for each server or component to come up: nine processes start at once on 2 cores, and the API
#: server alone can take a minute to start when the machine is loaded.
CLUSTER_STARTUP_TIMEOUT = 300.0
#: Task slots per Celery worker.
WORKER_CONCURRENCY = 4
#: Seconds without a heartbeat before a triggerer is presumed dead. Higher than the one-triggerer harness's:
#: a triggerer's first connection lookups can stall its heartbeat for 8-16 s on 2 cores, and with a second
#: triggerer alive a lower threshold moves triggers between two healthy triggerers.
TRIGGERER_HEALTH_CHECK_THRESHOLD = 15
TRIGGERER_HEARTBEAT_SECONDS = 1

#: Importable by every component (on PYTHONPATH): the hostname each one reports, and the queue policy.
_HOSTNAME_MODULE = '''\
"""Each component of the test cluster reports its own name as its hostname."""
import os
import socket


def hostname():
    return os.environ.get("DEVREV_CLUSTER_HOST") or socket.getfqdn()
'''
_LOCAL_SETTINGS = '''\
"""Cluster policy of the test cluster: pin tasks to Celery queues by task id (DEVREV_CLUSTER_QUEUES)."""
import json
import os


def task_policy(task):
    queue = json.loads(os.environ.get("DEVREV_CLUSTER_QUEUES") or "{}").get(task.task_id)
    if queue:
        task.queue = queue
'''


#: A plugin of the test cluster: turns on Airflow's hook-lineage collection (a reader registered), and writes
#: what each successful task collected to ``$DEVREV_CLUSTER_LINEAGE/<dag>.<run>.<task>.<map>.json``, from the
#: task's own process on its worker, as a lineage backend (OpenLineage) would read it.
_LINEAGE_PLUGIN = '''\
"""Records the hook lineage of each successful task of the test cluster as JSON."""
import json
import os
from pathlib import Path

from airflow.listeners import hookimpl
from airflow.plugins_manager import AirflowPlugin
from airflow.sdk.lineage import HookLineageReader


class _LineageFiles:
    @hookimpl
    def on_task_instance_success(self, previous_state, task_instance):
        from airflow.sdk.lineage import get_hook_lineage_collector

        folder = os.environ.get("DEVREV_CLUSTER_LINEAGE")
        if not folder:
            return
        collected = get_hook_lineage_collector().collected_assets
        ti = task_instance
        name = f"{ti.dag_id}.{ti.run_id}.{ti.task_id}.{ti.map_index}.json"
        Path(folder).mkdir(parents=True, exist_ok=True)
        (Path(folder) / name).write_text(
            json.dumps(
                {
                    "inputs": [info.asset.uri for info in collected.inputs],
                    "outputs": [info.asset.uri for info in collected.outputs],
                }
            )
        )


class DevRevClusterLineage(AirflowPlugin):
    name = "devrev_cluster_lineage"
    hook_lineage_readers = [HookLineageReader]
    listeners = [_LineageFiles()]
'''


class MissingServerError(AssertionError):
    """A server the cluster needs is not installed."""


def postgres_bin() -> Path:
    """The folder of the newest Debian PostgreSQL server (``/usr/lib/postgresql/<major>/bin``)."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"), key=lambda p: int(p.parent.parent.name))
    if found:
        return found[-1].parent
    on_path = shutil.which("postgres")
    if on_path:
        return Path(on_path).parent
    raise MissingServerError(missing_servers_message())


def missing_servers() -> list[str]:
    """The Debian packages of the servers that are not installed, empty when all are."""
    missing = []
    if not list(Path("/usr/lib/postgresql").glob("*/bin/postgres")) and not shutil.which("postgres"):
        missing.append("postgresql")
    if not shutil.which("redis-server"):
        missing.append("redis-server")
    return missing


def missing_servers_message() -> str:
    missing = " ".join(missing_servers()) or "postgresql redis-server"
    return (
        f"the distributed deployment tests need PostgreSQL and Redis servers; install them with "
        f"`sudo apt-get update && sudo apt-get install -y {missing}` (or run scripts/system_deps.sh as root)"
    )


# -- the deployment ----------------------------------------------------------------------------------------


@dataclass
class Cluster(Deployment):
    """A :class:`Deployment` on PostgreSQL, Redis and moto, with the CeleryExecutor; see the module docstring."""

    pg_port: int = 0
    redis_port: int = 0
    s3_port: int = 0
    #: The PostgreSQL data directory's parent (owned by the server's user); removed at the end.
    pg_root: Path = Path()
    servers: list[Component] = field(default_factory=list)
    #: Each triggerer's ``--capacity`` (None: Airflow's default), as :meth:`start_cluster` set it.
    triggerer_capacity: int | None = None

    @property
    def pg_dsn(self) -> str:
        return f"postgresql://{PG_ROLE}@127.0.0.1:{self.pg_port}/airflow"

    @property
    def s3_url(self) -> str:
        return f"http://127.0.0.1:{self.s3_port}"

    def airflow_components(self) -> list[Component]:
        return [c for c in self.components if c not in self.servers]

    def component(self, name: str) -> Component:
        return next(c for c in self.components if c.name == name)

    def live_triggerers(self) -> list[Component]:
        """The triggerers started and neither killed nor exited."""
        return [
            c
            for c in self.components
            if c.name.startswith("triggerer") and not c.expected_dead and c.popen.poll() is None
        ]

    def replace_killed_triggerers(self) -> list[Component]:
        """
        Start a new triggerer for each one a scenario killed, so that two run again; wait until each new one
        has a job. A new one gets a new name (``triggerer-3``, ...): the dead one's output stays for the
        secret sweep, and the ``job`` rows tell them apart.

        :return: the triggerers started.
        """
        started = []
        while len(self.live_triggerers()) < len(TRIGGERERS):
            name = f"triggerer-{len([c for c in self.components if c.name.startswith('triggerer')]) + 1}"
            capacity = ["--capacity", str(self.triggerer_capacity)] if self.triggerer_capacity else []
            started.append(self.start(name, "triggerer", "--skip-serve-logs", *capacity, env=_host(name)))
        for component in started:
            wait_for(
                f"{component.name} to start a job",
                lambda c=component: c.name in self.triggerer_jobs(),
                timeout=CLUSTER_STARTUP_TIMEOUT,
                deployment=self,
            )
        return started

    # -- reading the stores ---------------------------------------------------------------------------

    def query(self, sql: str, *params: Any) -> list[dict[str, Any]]:
        """Rows of a read-only query (``?`` placeholders, as the SQLite harness writes them) on PostgreSQL."""
        import psycopg2
        import psycopg2.extras

        try:
            con = psycopg2.connect(self.pg_dsn, connect_timeout=10)
        except psycopg2.OperationalError:
            return []  # not up yet: the callers poll
        try:
            con.set_session(readonly=True, autocommit=True)
            with con.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cursor:
                cursor.execute(sql.replace("?", "%s"), params)
                return [dict(row) for row in cursor.fetchall()]
        except psycopg2.errors.UndefinedTable:
            return []  # before `db migrate`
        finally:
            con.close()

    def dump_db(self) -> dict[str, str]:
        """The whole metadata DB as ``pg_dump`` writes it (``{"pg_dump": text}``)."""
        done = subprocess.run(
            [
                str(postgres_bin() / "pg_dump"),
                "--no-owner",
                "-h",
                "127.0.0.1",
                "-p",
                str(self.pg_port),
                "-U",
                PG_ROLE,
                "airflow",
            ],
            capture_output=True,
            text=True,
            timeout=CLI_TIMEOUT,
            check=False,
        )
        if done.returncode:
            fail(f"pg_dump exited with {done.returncode}: {done.stderr[-2000:]}")
        return {"pg_dump": done.stdout}

    def redis_values(self) -> dict[str, bytes]:
        """Every key of the broker and its value(s), whatever the type, as bytes."""
        import redis

        client = redis.Redis(host="127.0.0.1", port=self.redis_port, socket_timeout=10)
        values: dict[str, bytes] = {}
        try:
            for db in range(16):
                client.execute_command("SELECT", db)
                for key in client.scan_iter(count=500):
                    kind = client.type(key).decode()
                    if kind == "string":
                        parts = [client.get(key) or b""]
                    elif kind == "list":
                        parts = client.lrange(key, 0, -1)
                    elif kind == "hash":
                        parts = [b for pair in client.hgetall(key).items() for b in pair]
                    elif kind == "set":
                        parts = list(client.smembers(key))
                    elif kind == "zset":
                        parts = [member for member, _ in client.zrange(key, 0, -1, withscores=True)]
                    else:
                        parts = [client.dump(key) or b""]
                    values[f"{db}:{key.decode(errors='replace')}"] = b"\n".join(parts)
        finally:
            client.close()
        return values

    def s3(self) -> Any:
        """A boto3 S3 client of the object store."""
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.s3_url,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            region_name="us-east-1",
        )

    def objects(self) -> dict[str, bytes]:
        """Every object of the bucket, ``key -> content``."""
        client = self.s3()
        listed = client.list_objects_v2(Bucket=BUCKET).get("Contents", [])
        return {o["Key"]: client.get_object(Bucket=BUCKET, Key=o["Key"])["Body"].read() for o in listed}

    def lineage(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> dict[str, list[str]] | None:
        """The hook lineage a successful task collected (``{"inputs": [uri], "outputs": [uri]}``), None if none."""
        path = self.home / "lineage" / f"{dag_id}.{run_id}.{task_id}.{map_index}.json"
        return json.loads(path.read_text()) if path.exists() else None

    def pending_uploads(self) -> list[str]:
        """Keys of multipart uploads started and neither completed nor aborted."""
        return [u["Key"] for u in self.s3().list_multipart_uploads(Bucket=BUCKET).get("Uploads", [])]

    # -- Airflow's components -------------------------------------------------------------------------

    def triggerer_jobs(self) -> dict[str, int]:
        """``component name -> id`` of the latest TriggererJob each triggerer started (from its hostname)."""
        rows = self.query("SELECT id, hostname FROM job WHERE job_type = 'TriggererJob' ORDER BY id")
        return {row["hostname"]: row["id"] for row in rows}

    def start_cluster(self, *, triggerer_capacity: int | None = None) -> None:
        """
        Start every Airflow component (api-server, scheduler, dag-processor, two triggerers, two Celery
        workers); wait until the API server reports them healthy, both triggerers have a job, both workers
        are ready and the dag processor has stored ``dag_id``.

        :param triggerer_capacity: each triggerer's ``--capacity`` (Airflow's default, 1000, when None).
        """
        self.start("api-server", "api-server", "--host", "127.0.0.1", "--port", str(self.api_port), "--workers", "1")
        self.start("scheduler", "scheduler", "--skip-serve-logs", env=_host("scheduler"))
        self.start("dag-processor", "dag-processor", env=_host("dag-processor"))
        self.triggerer_capacity = triggerer_capacity
        capacity = ["--capacity", str(triggerer_capacity)] if triggerer_capacity else []
        for name in TRIGGERERS:
            self.start(name, "triggerer", "--skip-serve-logs", *capacity, env=_host(name))
        for name in WORKERS:
            self.start(
                name,
                *("celery", "worker", "--skip-serve-logs", "--celery-hostname", f"{name}@%h"),
                *("--queues", f"default,{name}", "--concurrency", str(WORKER_CONCURRENCY)),
                env=_host(name),
            )

        def all_healthy() -> dict[str, Any] | None:
            health = self.health()
            return health if health and all(part.get("status") == "healthy" for part in health.values()) else None

        wait_for("every component to report healthy", all_healthy, timeout=CLUSTER_STARTUP_TIMEOUT, deployment=self)
        wait_for(
            "both triggerers to start a job",
            lambda: set(TRIGGERERS) <= set(self.triggerer_jobs()),
            timeout=CLUSTER_STARTUP_TIMEOUT,
            deployment=self,
        )
        for name in WORKERS:
            worker = self.component(name)
            wait_for(
                f"{name} to be ready",
                lambda w=worker: " ready." in w.tail(200),
                timeout=CLUSTER_STARTUP_TIMEOUT,
                deployment=self,
            )
        wait_for(
            f"the dag processor to store {self.dag_id}",
            lambda: self.query("SELECT dag_id FROM dag WHERE dag_id = ?", self.dag_id),
            timeout=CLUSTER_STARTUP_TIMEOUT,
            deployment=self,
        )

    def stop_airflow(self) -> None:
        """Stop Airflow's components, leave the servers up (their stores can then be read whole)."""
        self.stop(self.airflow_components())


def _host(name: str) -> dict[str, str]:
    return {"DEVREV_CLUSTER_HOST": name}


# -- the servers -------------------------------------------------------------------------------------------


def _server_user() -> str | None:
    """Who runs PostgreSQL: ``postgres`` when this process is root (PostgreSQL refuses root), else us."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(PG_USER)
    except KeyError:
        raise MissingServerError(
            f"running as root, PostgreSQL must run as an unprivileged user and there is no {PG_USER!r} user; "
            + missing_servers_message()
        ) from None
    return PG_USER


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def start_postgres(d: Cluster) -> None:
    """initdb a fresh data directory and start PostgreSQL on ``d.pg_port``; create Airflow's database."""
    bin_dir = postgres_bin()
    user = _server_user()
    data = d.pg_root / "data"
    if user:
        entry = pwd.getpwnam(user)
        os.chown(d.pg_root, entry.pw_uid, entry.pw_gid)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "LANG": "C"}
    done = subprocess.run(
        [str(bin_dir / "initdb"), "-D", str(data), "-U", PG_ROLE, "--auth=trust", "-E", "UTF8", "--no-locale"],
        user=user,
        env=env,
        cwd="/",
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT,
        check=False,
    )
    if done.returncode:
        fail(f"initdb exited with {done.returncode}:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    # Throwaway data: no fsync. The socket goes to the private folder, not /var/run/postgresql.
    settings = ["listen_addresses=127.0.0.1", f"port={d.pg_port}", f"unix_socket_directories={d.pg_root}"]
    settings += ["fsync=off", "synchronous_commit=off", "full_page_writes=off", "max_connections=300"]
    argv = [str(bin_dir / "postgres"), "-D", str(data)] + [arg for s in settings for arg in ("-c", s)]
    d.servers.append(d.spawn("postgres", argv, env=env, user=user, stop_signal=signal.SIGINT))

    import psycopg2

    def accepting() -> bool:
        try:
            psycopg2.connect(f"postgresql://{PG_ROLE}@127.0.0.1:{d.pg_port}/postgres", connect_timeout=5).close()
        except psycopg2.OperationalError:
            return False
        return True

    wait_for("PostgreSQL to accept connections", accepting, timeout=CLUSTER_STARTUP_TIMEOUT, deployment=d)
    con = psycopg2.connect(f"postgresql://{PG_ROLE}@127.0.0.1:{d.pg_port}/postgres", connect_timeout=10)
    try:
        con.autocommit = True
        with con.cursor() as cursor:
            cursor.execute("CREATE DATABASE airflow")
    finally:
        con.close()


def start_redis(d: Cluster) -> None:
    """Start ``redis-server`` on ``d.redis_port``: loopback only, nothing written to disk."""
    binary = shutil.which("redis-server")
    if not binary:
        raise MissingServerError(missing_servers_message())
    argv = [binary, "--port", str(d.redis_port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    argv += ["--dir", str(d.home), "--protected-mode", "yes"]
    d.servers.append(d.spawn("redis", argv))
    wait_for("Redis to listen", lambda: _port_open(d.redis_port), timeout=CLUSTER_STARTUP_TIMEOUT, deployment=d)


def start_s3(d: Cluster) -> None:
    """Start moto's S3-compatible server on ``d.s3_port`` and create the bucket."""
    argv = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "--port", str(d.s3_port)]
    d.servers.append(d.spawn("s3", argv))
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def answering() -> bool:
        try:
            with opener.open(d.s3_url + "/moto-api/", timeout=5):
                return True
        except OSError:
            return False

    wait_for("the S3 server to answer", answering, timeout=CLUSTER_STARTUP_TIMEOUT, deployment=d)
    d.s3().create_bucket(Bucket=BUCKET)


def cluster_env(d: Cluster, sim: DevRevSimulator, dags: Path) -> dict[str, str]:
    """The one-machine harness's environment, moved onto PostgreSQL, Redis and Celery; no connection in it."""
    env = deployment_env(d.home, dags, d.api_port, d.fernet_key, sim)
    del env["AIRFLOW_CONN_DEVREV_DEFAULT"]  # stored in the metadata DB instead
    config = d.home / "config"
    pythonpath = [str(config), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    env.update(
        {
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"postgresql+psycopg2://{PG_ROLE}@127.0.0.1:{d.pg_port}/airflow",
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__CORE__PARALLELISM": "16",
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": "devrev_cluster_host.hostname",
            "AIRFLOW__CELERY__BROKER_URL": f"redis://127.0.0.1:{d.redis_port}/0",
            "AIRFLOW__CELERY__RESULT_BACKEND": f"db+postgresql+psycopg2://{PG_ROLE}@127.0.0.1:{d.pg_port}/airflow",
            "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(WORKER_CONCURRENCY),
            "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": str(TRIGGERER_HEARTBEAT_SECONDS),
            "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": str(TRIGGERER_HEALTH_CHECK_THRESHOLD),
            "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_THRESHOLD": "60",
            # The API server answers tasks and triggerers alone (one process): on a loaded 2-core machine a
            # call can take longer than the 5 s default, and a task whose calls all time out is killed.
            "AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT": "60",
            "PYTHONPATH": os.pathsep.join(pythonpath),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(d.home / "plugins"),
            "DEVREV_CLUSTER_LINEAGE": str(d.home / "lineage"),
            # boto3 in the test process and in Airflow must never look for real credentials or a proxy.
            "AWS_EC2_METADATA_DISABLED": "true",
        }
    )
    return env


@contextmanager
def cluster_in(
    home: Path,
    sim: DevRevSimulator,
    *,
    dag_id: str,
    dag_files: Iterable[Path | str],
    env: Mapping[str, str] | None = None,
) -> Iterator[Cluster]:
    """
    A fresh cluster in ``home``: servers started, DB migrated, connections stored; Airflow's components are
    started by :meth:`Cluster.start_cluster`. Everything is stopped on exit, always, and nothing may be left.

    :param dag_id: the DAG the run and task queries read.
    :param dag_files: DAG files to deploy: names in ``dags/examples`` or paths.
    :param env: more environment variables for every Airflow component.
    """
    missing = missing_servers()
    if missing:
        raise MissingServerError(missing_servers_message())
    dags, config = home / "dags", home / "config"
    dags.mkdir(parents=True)
    config.mkdir()
    for name in dag_files:
        source = EXAMPLE_DAGS / name
        shutil.copy(source, dags / source.name)
    (config / "devrev_cluster_host.py").write_text(_HOSTNAME_MODULE)
    (config / "airflow_local_settings.py").write_text(_LOCAL_SETTINGS)
    (home / "plugins").mkdir()
    (home / "plugins" / "devrev_cluster_lineage.py").write_text(_LINEAGE_PLUGIN)
    # tempfile, not the test's tmp_path: PostgreSQL's user must be able to reach its data directory.
    pg_root = Path(tempfile.mkdtemp(prefix="devrev-pg-"))
    d = Cluster(
        home=home,
        env={},
        api_port=free_port(),
        fernet_key=Fernet.generate_key().decode(),
        dag_id=dag_id,
        pg_port=free_port(),
        redis_port=free_port(),
        s3_port=free_port(),
        pg_root=pg_root,
    )
    d.env = {**cluster_env(d, sim, dags), **(env or {})}
    try:
        start_postgres(d)
        start_redis(d)
        start_s3(d)
        d.cli("db", "migrate")
        add_connections(d, sim)
        yield d
    finally:
        d.stop(d.airflow_components())
        d.stop(d.servers)
        leftovers = d.leftovers()
        shutil.rmtree(pg_root, ignore_errors=True)
        if leftovers:
            fail(f"processes left behind: {leftovers}")


def add_connections(d: Cluster, sim: DevRevSimulator) -> None:
    """Store ``devrev_default`` (the simulator, its token) and ``aws_default`` (moto) in the metadata DB."""
    d.cli("connections", "add", "devrev_default", "--conn-json", sim.connection_json())
    aws = {
        "conn_type": "aws",
        "login": "testing",
        "password": "testing",
        "extra": {"endpoint_url": d.s3_url, "region_name": "us-east-1"},
    }
    d.cli("connections", "add", "aws_default", "--conn-json", json.dumps(aws))


# -- reading what a run left -------------------------------------------------------------------------------


def trigger_arguments(d: Cluster, stored: Any) -> str:
    """A trigger row's arguments as Airflow reads them (JSON text), decrypted when stored encrypted."""
    if not isinstance(stored, str):
        return json.dumps(stored)
    return d.trigger_kwargs(stored) or ""


def argument(text: str, name: str) -> Any:
    """One argument (``session_id``, ``end_time``) from a trigger's arguments as :func:`trigger_arguments` reads
    them: Airflow's serialized form nests values, so the first ``"name": value`` wins."""
    match = re.search(rf'"{name}":\s*("(?:[^"\\]|\\.)*"|[-0-9.eE+]+|null)', text)
    return json.loads(match.group(1)) if match else None


def utc_seconds(moment: Any) -> float | None:
    """A ``timestamptz`` column as Unix seconds."""
    return None if moment is None else float(moment.timestamp())


def monotonic_offset() -> float:
    """``time.time() - time.monotonic()``: turns the simulator's clock into wall-clock time."""
    return time.time() - time.monotonic()


def token_forms(token: str) -> dict[str, str]:
    """The token as it could leak: raw, ``repr``-escaped, JSON-escaped, URL-encoded (both ways)."""
    from urllib.parse import quote, quote_plus

    forms = {
        "raw": token,
        "repr": repr(token)[1:-1],
        "json": json.dumps(token)[1:-1],
        "url": quote(token, safe=""),
        "url+": quote_plus(token),
    }
    return forms


def count_forms(blobs: Mapping[str, bytes], token: str) -> dict[str, int]:
    """``"where (form)" -> hits`` of every form of the token in every blob; only the non-zero ones."""
    hits = {}
    for form, text in token_forms(token).items():
        needle = text.encode()
        for where, blob in blobs.items():
            count = blob.count(needle)
            if count:
                hits[f"{where} ({form})"] = count
    return hits


def files_under(root: Path) -> dict[str, bytes]:
    """Every regular file under ``root``, ``relative path -> bytes``."""
    blobs = {}
    for path in sorted(root.rglob("*")):
        with suppress(OSError):
            if path.is_file() and not path.is_symlink():
                blobs[str(path.relative_to(root))] = path.read_bytes()
    return blobs
