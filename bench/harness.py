"""
Plumbing shared by the benchmarks: the server process, the Airflow environment of the measuring processes,
and running one measurement in a fresh interpreter.

Every measurement runs in its own subprocess: Airflow reads its configuration and connections from the
environment at import time, and memory figures are only honest in a process that measured nothing before.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
#: Any token of 5+ characters: the provider refuses shorter ones (Airflow cannot mask them).
TOKEN = "bench-token-0123456789"
PLATFORM = "android"
VERSION_KEY = "com.acme.shop@5.2.0"


@dataclass
class BenchServer:
    """A running :mod:`bench.server` process and its control port."""

    process: subprocess.Popen[str] | None
    port: int
    control_port: int
    uvloop: bool

    @property
    def url(self) -> str:
        """Base URL of the API port."""
        return f"http://127.0.0.1:{self.port}"

    def command(self, line: str) -> dict[str, Any]:
        """Send one control command and return its JSON answer (blocking)."""
        with socket.create_connection(("127.0.0.1", self.control_port), timeout=30) as sock:
            sock.sendall(line.encode() + b"\n")
            reply = sock.makefile("rb").readline()
        answer: dict[str, Any] = json.loads(reply)
        return answer

    def stats(self) -> dict[str, Any]:
        """Connections, requests and statuses since the last :meth:`reset`."""
        return self.command("stats")

    def reset(self) -> None:
        """Start counting from zero."""
        self.command("reset")


async def acommand(control_port: int, line: str) -> dict[str, Any]:
    """:meth:`BenchServer.command` from inside an event loop, without blocking it."""
    reader, writer = await asyncio.open_connection("127.0.0.1", control_port)
    writer.write(line.encode() + b"\n")
    await writer.drain()
    reply = await reader.readline()
    writer.close()
    await writer.wait_closed()
    answer: dict[str, Any] = json.loads(reply)
    return answer


def control_client(control_port: int) -> BenchServer:
    """A :class:`BenchServer` handle for a child process that only talks to the control port."""
    return BenchServer(process=None, port=0, control_port=control_port, uvloop=False)


@functools.cache
def bench_path() -> str:
    """
    A folder holding only a link to this ``bench`` package, for the children's ``PYTHONPATH``: the repository
    root would also put this tree's provider (which sits at the root) before the installed one.
    """
    folder = Path(tempfile.mkdtemp(prefix="devrev-bench-path-"))
    (folder / "bench").symlink_to(REPO / "bench", target_is_directory=True)
    return str(folder)


def bench_pythonpath() -> str:
    """The children's ``PYTHONPATH``: the caller's, then :func:`bench_path`."""
    return os.pathsep.join(filter(None, [os.environ.get("PYTHONPATH"), bench_path()]))


@contextmanager
def bench_server(*, no_uvloop: bool = False) -> Iterator[BenchServer]:
    """Start :mod:`bench.server` in its own process for the duration of the block."""
    command = [sys.executable, "-m", "bench.server", "--token", TOKEN]
    if no_uvloop:
        command.append("--no-uvloop")
    env = {**os.environ, "PYTHONPATH": bench_pythonpath()}
    process = subprocess.Popen(command, cwd=bench_path(), env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        ready = json.loads(process.stdout.readline())
        yield BenchServer(process, ready["port"], ready["control_port"], ready["uvloop"])
    finally:
        process.terminate()
        process.wait(timeout=30)


@dataclass
class SimulatorHost:
    """A running :mod:`bench.simulator_host` process: the project's simulator, seeded, with a control port."""

    process: subprocess.Popen[str]
    url: str
    control_port: int

    def connection(self) -> str:
        """An Airflow connection (JSON, for an ``AIRFLOW_CONN_*`` variable) to this simulator."""
        return json.dumps({"conn_type": "devrev", "host": self.url, "password": TOKEN})


@contextmanager
def simulator_host(
    env: Mapping[str, str],
    *,
    sessions: int,
    page_size: int = 100,
    rate_limit: str | None = None,
    latency: float = 0.0,
) -> Iterator[SimulatorHost]:
    """Start :mod:`bench.simulator_host` (with the measuring environment, so ``--provider-path`` applies)."""
    command = [sys.executable, "-m", "bench.simulator_host", "--token", TOKEN, "--sessions", str(sessions)]
    command += ["--page-size", str(page_size), "--latency", str(latency)]
    if rate_limit:
        command += ["--rate-limit", rate_limit]
    process = subprocess.Popen(command, cwd=child_cwd(env), env=dict(env), stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line:
            raise RuntimeError(f"bench.simulator_host exited with code {process.wait()}")
        ready = json.loads(line)
        yield SimulatorHost(process, ready["url"], ready["control_port"])
    finally:
        process.terminate()
        process.wait(timeout=30)


def airflow_environment(home: Path, server_url: str) -> dict[str, str]:
    """
    The environment of a measuring process: its own Airflow home, and one connection per contender.

    The http connection carries the same headers as the DevRev one (in its extras, which the http
    provider sends as headers), so both send the same request.
    """
    headers = {"Authorization": f"Bearer {TOKEN}", "Accept": "application/json", "X-Devrev-Scope": "beta"}
    env = dict(os.environ)
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
            "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
            "AIRFLOW_CONN_DEVREV_DEFAULT": json.dumps({"conn_type": "devrev", "host": server_url, "password": TOKEN}),
            "AIRFLOW_CONN_HTTP_DEFAULT": json.dumps({"conn_type": "http", "host": server_url, "extra": headers}),
            "PYTHONPATH": bench_pythonpath(),
        }
    )
    return env


@contextmanager
def airflow_home() -> Iterator[Path]:
    """A throw-away ``AIRFLOW_HOME``."""
    with tempfile.TemporaryDirectory(prefix="devrev-bench-") as home:
        Path(home, "dags").mkdir()
        yield Path(home)


def child_cwd(env: Mapping[str, str]) -> str:
    """
    Where measuring processes run: their Airflow home, not the repository. ``python -m`` and ``-c`` put the
    working directory first on ``sys.path``, so from the repository the checkout's package would shadow
    the one ``PYTHONPATH`` names (``--provider-path``).
    """
    return env["AIRFLOW_HOME"]


def run_child(module: str, args: Sequence[str], env: Mapping[str, str], log_dir: Path) -> dict[str, Any]:
    """
    Run ``python -m bench.<module> ARGS --out FILE`` in a fresh interpreter and return the JSON it wrote.

    The child's own output (Airflow's log lines included) goes to a log file: the result travels in a file
    so that logging can never corrupt it, and logging costs the same for every contender.
    """
    out = log_dir / f"{module}-{os.getpid()}-{len(list(log_dir.iterdir()))}.json"
    log = out.with_suffix(".log")
    with log.open("w") as sink:
        done = subprocess.run(
            [sys.executable, "-m", f"bench.{module}", *args, "--out", str(out)],
            cwd=child_cwd(env),
            env=dict(env),
            stdout=sink,
            stderr=subprocess.STDOUT,
            check=False,
        )
    if done.returncode != 0:
        tail = log.read_text()[-3000:]
        raise RuntimeError(f"bench.{module} {' '.join(args)} failed with exit code {done.returncode}:\n{tail}")
    result: dict[str, Any] = json.loads(out.read_text())
    return result


def write_result(path: str, result: Mapping[str, Any]) -> None:
    """What a child process hands back to :func:`run_child`."""
    Path(path).write_text(json.dumps(result, indent=1))
