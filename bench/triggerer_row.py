"""
The "real triggerer" row (issue 16): a real ``airflow triggerer`` process holding N deferred sensor tasks' triggers
at one poll interval, DevRev's trigger beside ``HttpSensorTrigger``; what users will see, where the in-loop
capacity benchmark is what we tune.

For each contender, in turn (Airflow 3.3): a fresh ``AIRFLOW_HOME`` (SQLite), ``airflow db migrate``, a DAG with
one deferrable sensor mapped over N session ids, ``airflow dags reserialize``; an ``airflow triggerer --capacity N``
started with no trigger; then the run's N task instances are put into the state a real deferral leaves them in
(:mod:`bench.triggerer_rows`: one warm-up instance first, then the N - 1 others), and the triggerer picks their
triggers up as it would after real deferrals. Once the benchmark server has been asked for all N sessions, a
steady window (every poll a 404) measures the CPU of the triggerer's processes per poll answered, and RSS per
trigger = (RSS then - RSS with the warm-up trigger alone) / (N - 1). Finally the sessions appear and every task
instance must leave ``deferred`` with its trigger's "found" event in ``next_kwargs``.

``python -m bench.triggerer_row --triggers 1000 --poll-interval 5 [--contenders devrev,http] [--window 30]``
prints the table; ``python -m bench --only triggerer`` puts it in docs/benchmarks.md as "Real triggerer".
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import secrets
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import psutil

from bench.harness import BenchServer, airflow_environment, airflow_home, bench_server, child_cwd, run_child
from bench.report import Section
from bench.stats import fmt, markdown_table
from bench.triggerer_rows import APPEAR_SPREAD_MS, TASK_ID, dag_source

CONTENDERS = ("devrev", "http")
LABELS = {"devrev": "DevRevSessionTrigger", "http": "HttpSensorTrigger"}
AIRFLOW = str(Path(sys.executable).with_name("airflow"))
#: Bounds, in seconds, of the set-up commands and of each wait (all polled, never slept through).
CLI_TIMEOUT = 300.0
READY_TIMEOUT = 120.0
STOP_TIMEOUT = 30.0
POLL_EVERY = 0.5

T = TypeVar("T")


@dataclass
class RowSettings:
    """What to measure."""

    triggers: int = 1000
    poll_interval: float = 5.0
    contenders: tuple[str, ...] = CONTENDERS
    window: float = 30.0


class RowError(RuntimeError):
    """A step of the row failed: a command, the triggerer, or a wait that timed out."""


# -- the arithmetic (pure) ------------------------------------------------------------------------------------


def per_poll(cpu_seconds: float, polls: int) -> float:
    """CPU seconds per poll answered; NaN without polls."""
    return cpu_seconds / polls if polls else float("nan")


#: A triggerer making fewer polls than this share of N / poll interval in the window is falling behind.
KEEP_UP = 0.95


def kept_up(figures: Mapping[str, Any]) -> float:
    """Polls made in the window over the polls N triggers polling every interval would make."""
    expected = figures["triggers"] / figures["poll_interval"] * figures["window"]
    return float(figures["polls"]) / expected if expected else float("nan")


def per_trigger(rss_after: int, rss_before: int, triggers: int) -> float:
    """Bytes of RSS per trigger added; NaN when none was."""
    return (rss_after - rss_before) / triggers if triggers > 0 else float("nan")


def cpu_delta(before: Mapping[int, float], after: Mapping[int, float]) -> float:
    """
    CPU seconds used between two snapshots (pid -> CPU seconds so far): a process alive at both counts its
    difference, one started in between all of its time (one gone by the end is lost: none should be).
    """
    return sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items())


HEADER = [
    "contender",
    "triggers",
    "poll",
    "CPU per poll, triggerer",
    "of which runner",
    "RSS per trigger, triggerer",
    "of which runner",
    "triggerer RSS: idle / 1 trigger / all",
    "polls/s",
    "CPU, share of a core",
    "TCP connections in window",
    "time to poll all",
    "events fired",
]


def row(figures: Mapping[str, Any]) -> list[str]:
    """One contender's table row."""
    mb = 1024 * 1024
    rss = figures["rss"]
    return [
        LABELS.get(figures["contender"], figures["contender"]),
        f"{figures['triggers']:,}",
        f"{figures['poll_interval']:g} s",
        fmt(figures["cpu_per_poll"] * 1e6, 0, " µs"),
        fmt(figures["runner_cpu_per_poll"] * 1e6, 0, " µs"),
        fmt(figures["rss_per_trigger"] / 1024, 1, " KB"),
        fmt(figures["runner_rss_per_trigger"] / 1024, 1, " KB"),
        f"{rss['idle'] / mb:,.0f} / {rss['warm'] / mb:,.0f} / {rss['all'] / mb:,.0f} MB",
        fmt(figures["polls"] / figures["window"], 0),
        fmt(figures["cpu"] / figures["window"] * 100, 0, " %"),
        fmt(figures["accepts"]),
        fmt(figures["start_seconds"], 0, " s"),
        f"{figures['fired']:,} / {figures['triggers']:,}",
    ]


def table(results: Sequence[Mapping[str, Any]]) -> str:
    """The markdown table of every contender measured."""
    return markdown_table(HEADER, [row(figures) for figures in results])


# -- the triggerer's processes -------------------------------------------------------------------------------


@dataclass
class Triggerer:
    """An ``airflow triggerer`` started as the leader of its own session; its runner is a process of that session."""

    popen: subprocess.Popen[bytes]
    output: Path

    def members(self) -> list[psutil.Process]:
        """Its live processes: the supervisor (the leader) and everything it started (the trigger runner)."""
        found = []
        for proc in psutil.process_iter(["status"]):
            with suppress(psutil.Error, OSError):
                if proc.info["status"] != psutil.STATUS_ZOMBIE and os.getsid(proc.pid) == self.popen.pid:
                    found.append(proc)
        return found

    def runner(self) -> list[psutil.Process]:
        """Its processes but the supervisor: in Airflow 3, the forked ``TriggerRunner`` that runs the triggers."""
        return [proc for proc in self.members() if proc.pid != self.popen.pid]

    def rss(self) -> tuple[int, int]:
        """RSS in bytes of (every process, the runner's)."""
        total = runner = 0
        for proc in self.members():
            with suppress(psutil.Error):
                size = proc.memory_info().rss
                total += size
                runner += size if proc.pid != self.popen.pid else 0
        return total, runner

    def cpu(self) -> dict[int, float]:
        """CPU seconds (user + system) so far of each live process, by pid."""
        times = {}
        for proc in self.members():
            with suppress(psutil.Error):
                spent = proc.cpu_times()
                times[proc.pid] = spent.user + spent.system
        return times

    def describe(self) -> list[str]:
        """Each live process as ``pid: command line`` (supervisor first), for the log of what was measured."""
        described = []
        for proc in sorted(self.members(), key=lambda p: p.pid != self.popen.pid):
            with suppress(psutil.Error):
                described.append(f"{proc.pid}: {' '.join(proc.cmdline())[:120]}")
        return described

    def check_alive(self) -> None:
        """Fail, with its last lines, when it exited."""
        if self.popen.poll() is not None:
            raise RowError(f"the triggerer exited with {self.popen.returncode}:\n{self.tail()}")

    def tail(self, lines: int = 40) -> str:
        """The last lines of its output."""
        text = self.output.read_text(errors="replace") if self.output.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        """SIGTERM its process group (Airflow's graceful stop), then SIGKILL whatever is left; reap it."""
        for sig in (signal.SIGTERM, signal.SIGKILL):
            members = self.members()
            if not members:
                break
            with suppress(ProcessLookupError, PermissionError):
                os.killpg(self.popen.pid, sig)
            for proc in members:  # members moved to other process groups, if any
                with suppress(psutil.Error, OSError):
                    if os.getpgid(proc.pid) != self.popen.pid:
                        proc.send_signal(sig)
            _, alive = psutil.wait_procs(members, timeout=STOP_TIMEOUT)
            if not alive:
                break
        with suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=STOP_TIMEOUT)


@contextmanager
def triggerer(env: Mapping[str, str], capacity: int, output: Path) -> Iterator[Triggerer]:
    """``airflow triggerer --capacity N --skip-serve-logs`` for the block (the log server is not what is measured)."""
    with output.open("wb") as sink:
        popen = subprocess.Popen(
            [AIRFLOW, "triggerer", "--capacity", str(capacity), "--skip-serve-logs"],
            env=dict(env),
            cwd=child_cwd(env),
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    process = Triggerer(popen, output)
    try:
        yield process
    finally:
        process.stop()


def wait_for(what: str, condition: Callable[[], T], *, timeout: float, process: Triggerer | None = None) -> T:
    """Poll ``condition`` until it returns something truthy (returned); fail after ``timeout`` or if the
    triggerer died."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if process is not None:
            process.check_alive()
        if time.monotonic() > deadline:
            tail = f"\n{process.tail()}" if process is not None else ""
            raise RowError(f"timed out after {timeout:.0f} s waiting for {what}{tail}")
        time.sleep(POLL_EVERY)


# -- the deployment ------------------------------------------------------------------------------------------


def row_environment(base: Mapping[str, str], home: Path, server_url: str) -> dict[str, str]:
    """
    A contender's Airflow environment: ``base`` (its ``PYTHONPATH`` names the provider measured) with a home of
    its own, the benchmark server's connections, a Fernet key and loopback only.
    """
    from cryptography.fernet import Fernet

    env = airflow_environment(home, server_url)
    env["PYTHONPATH"] = base["PYTHONPATH"]
    env.update(
        {
            "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
        }
    )
    return env


def cli(env: Mapping[str, str], log: Path, *args: str) -> None:
    """Run ``airflow ARGS`` to completion (output appended to ``log``); fail with its tail otherwise."""
    with log.open("ab") as sink:
        sink.write(f"$ airflow {' '.join(args)}\n".encode())
        sink.flush()
        done = subprocess.run(
            [AIRFLOW, *args],
            env=dict(env),
            cwd=child_cwd(env),
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            timeout=CLI_TIMEOUT,
            check=False,
        )
    if done.returncode != 0:
        raise RowError(f"`airflow {' '.join(args)}` exited with {done.returncode}:\n{log.read_text()[-3000:]}")


def query(home: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    """Rows of a read-only query on the contender's SQLite DB, in a short transaction (the triggerer writes)."""
    con = sqlite3.connect(f"file:{home / 'airflow.db'}?mode=ro", uri=True, timeout=10)
    try:
        return list(con.execute(sql, params))
    finally:
        con.close()


def triggerer_ready(home: Path, process: Triggerer) -> bool:
    """The triggerer's job is heartbeating and its trigger runner has been forked."""
    jobs = query(home, "SELECT count(*) FROM job WHERE job_type = 'TriggererJob' AND state = 'running'")
    return bool(jobs[0][0]) and bool(process.runner())


def fired(home: Path, dag_id: str, contender: str) -> tuple[int, int]:
    """(task instances still deferred, task instances resumed with a "found" event in their ``next_kwargs``)."""
    rows = query(home, "SELECT state, next_kwargs FROM task_instance WHERE dag_id = ? AND task_id = ?", dag_id, TASK_ID)
    deferred = found = 0
    for state, next_kwargs in rows:
        if state == "deferred":
            deferred += 1
            continue
        event = json.loads(next_kwargs or "{}").get("event") if state == "scheduled" else None
        found += event_found(contender, event)
    return deferred, found


def event_found(contender: str, payload: Any) -> bool:
    """Whether ``payload`` is the contender's "the session exists" event (as :mod:`bench.contenders` reads it)."""
    if contender == "devrev":
        return isinstance(payload, dict) and payload.get("status") == "success"
    return payload is True


def steady_window(
    process: Triggerer, server: BenchServer, seconds: float
) -> tuple[dict[str, Any], float, float, list[str]]:
    """
    The server's counters and the CPU seconds of (the triggerer's processes, its runner's) over ``seconds``,
    and which processes were measured.
    """
    server.reset()
    before = process.cpu()
    runner_pids = {proc.pid for proc in process.runner()}
    processes = process.describe()
    time.sleep(seconds)  # the measurement window itself, not a wait for something
    after = process.cpu()
    stats = server.stats()
    process.check_alive()
    runner_cpu = cpu_delta(
        {pid: cpu for pid, cpu in before.items() if pid in runner_pids},
        {pid: cpu for pid, cpu in after.items() if pid != process.popen.pid},
    )
    return stats, cpu_delta(before, after), runner_cpu, processes


def fire(
    process: Triggerer, server: BenchServer, home: Path, dag_id: str, contender: str, settings: RowSettings
) -> tuple[int, int]:
    """
    Make every session appear; wait until no task instance is deferred any more. Returns (task instances
    resumed with a "found" event, "found" answers the server gave).
    """
    server.reset()
    server.command("epoch")
    deadline = APPEAR_SPREAD_MS / 1000 + 2 * settings.poll_interval + 60 + settings.triggers / 20
    wait_for(
        "every task instance to leave deferred",
        lambda: fired(home, dag_id, contender)[0] == 0,
        timeout=deadline,
        process=process,
    )
    return fired(home, dag_id, contender)[1], int(server.stats()["statuses"].get("200", 0))


# -- one contender -------------------------------------------------------------------------------------------


def measure(
    server: BenchServer,
    base_env: Mapping[str, str],
    log_dir: Path,
    contender: str,
    settings: RowSettings,
    progress: Callable[[str], None] = print,
) -> dict[str, Any]:
    """One contender's row, in a deployment of its own."""
    n = settings.triggers
    if n < 2:
        raise ValueError(f"--triggers must be at least 2 (one warm-up trigger, then the others), got {n}")
    dag_id = f"triggerer_row_{contender}"
    with airflow_home() as home:
        env = row_environment(base_env, home, server.url)
        log = log_dir / f"triggerer-row-{contender}-setup.log"
        (home / "dags" / f"{dag_id}.py").write_text(dag_source(dag_id, contender, n, settings.poll_interval))
        cli(env, log, "db", "migrate")
        cli(env, log, "dags", "reserialize")
        common = ["--dag-id", dag_id, "--contender", contender, "--poll-interval", str(settings.poll_interval)]
        common += ["--base-url", server.url]
        with triggerer(env, n, log_dir / f"triggerer-row-{contender}.log") as process:
            wait_for(
                "the triggerer to start", lambda: triggerer_ready(home, process), timeout=READY_TIMEOUT, process=process
            )
            idle, _ = process.rss()
            server.reset()
            run_child("triggerer_rows", ["defer", *common, "--first", "0", "--count", "1"], env, log_dir)
            wait_for(
                "the warm-up trigger's first poll",
                lambda: server.stats()["sessions_seen"] >= 1,
                timeout=READY_TIMEOUT,
                process=process,
            )
            warm, runner_warm = process.rss()
            started = time.monotonic()
            run_child("triggerer_rows", ["defer", *common, "--first", "1", "--count", str(n - 1)], env, log_dir)
            wait_for(
                f"all {n:,} sessions to be polled",
                lambda: server.stats()["sessions_seen"] >= n,
                timeout=READY_TIMEOUT + n / 10,
                process=process,
            )
            start_seconds = time.monotonic() - started
            full, runner_full = process.rss()
            progress(
                f"  triggerer row {contender}: all {n:,} triggers polled after {start_seconds:.0f} s; "
                f"measuring {settings.window:g} s"
            )
            stats, cpu, runner_cpu, processes = steady_window(process, server, settings.window)
            end, runner_end = process.rss()
            found, answered_found = fire(process, server, home, dag_id, contender, settings)
    if found != n:
        raise RowError(f"{contender}: {n - found:,} of {n:,} task instances resumed without a 'found' event")
    polls = int(stats["requests"])
    return {
        "contender": contender,
        "triggers": n,
        "poll_interval": settings.poll_interval,
        "window": settings.window,
        "polls": polls,
        "non_404": polls - int(stats["statuses"].get("404", 0)),
        "accepts": int(stats["accepts"]),
        "cpu": cpu,
        "runner_cpu": runner_cpu,
        "cpu_per_poll": per_poll(cpu, polls),
        "runner_cpu_per_poll": per_poll(runner_cpu, polls),
        "rss": {
            "idle": idle,
            "warm": warm,
            "all": full,
            "end": end,
            "runner_warm": runner_warm,
            "runner_all": runner_full,
            "runner_end": runner_end,
        },
        "rss_per_trigger": per_trigger(full, warm, n - 1),
        "runner_rss_per_trigger": per_trigger(runner_full, runner_warm, n - 1),
        "start_seconds": start_seconds,
        "fired": found,
        "found_answers": answered_found,
        "load_average": os.getloadavg(),
        "processes": processes,
    }


def measure_all(
    server: BenchServer,
    env: Mapping[str, str],
    log_dir: Path,
    settings: RowSettings,
    progress: Callable[[str], None] = print,
) -> list[dict[str, Any]]:
    """Every contender's row, one after the other (each with its own deployment), as data."""
    major = int(importlib.metadata.version("apache-airflow").split(".")[0])
    if major < 3:
        raise SystemExit("the real-triggerer row needs Airflow 3 (its TriggerRunner and DB layout); run it on 3.3")
    unknown = [c for c in settings.contenders if c not in CONTENDERS]
    if unknown:
        raise SystemExit(f"unknown real-triggerer contender(s) {', '.join(unknown)}; expected {', '.join(CONTENDERS)}")
    results = []
    for contender in settings.contenders:
        figures = measure(server, env, log_dir, contender, settings, progress)
        progress(
            f"  triggerer row {contender}: {figures['cpu_per_poll'] * 1e6:,.0f} µs/poll "
            f"(runner {figures['runner_cpu_per_poll'] * 1e6:,.0f}), "
            f"{figures['rss_per_trigger'] / 1024:,.1f} KB/trigger, "
            f"{figures['polls']:,} polls in {settings.window:g} s, fired {figures['fired']:,}/{figures['triggers']:,}"
        )
        results.append(figures)
    return results


def run(
    server: BenchServer,
    env: Mapping[str, str],
    log_dir: Path,
    settings: RowSettings,
    progress: Callable[[str], None] = print,
) -> Section:
    """The "Real triggerer" section of docs/benchmarks.md."""
    return section(measure_all(server, env, log_dir, settings, progress), settings)


def section(results: Sequence[Mapping[str, Any]], settings: RowSettings) -> Section:
    """Method, table and the notes the figures need."""
    loads = "; ".join(
        f"{LABELS.get(r['contender'], r['contender'])}: " + " / ".join(f"{x:.2f}" for x in r["load_average"])
        for r in results
    )
    problems = [
        f"{LABELS.get(r['contender'], r['contender'])}: {r['non_404']:,} polls in the window were not 404"
        for r in results
        if r["non_404"]
    ]
    problems += [
        f"{LABELS.get(r['contender'], r['contender'])}: the server answered {r['found_answers']:,} 'found' for "
        f"{r['triggers']:,} triggers"
        for r in results
        if r.get("found_answers", r["triggers"]) != r["triggers"]
    ]
    notes = (
        f"Load average (1/5/15 min) at the end of each contender's window: {loads}. The machine is shared: compare the "
        "contenders, measured one after the other in the same invocation. *RSS per trigger* is the growth from "
        "the warm-up trigger to all of them, summed over the triggerer's processes: pages the runner shares with "
        "the supervisor it was forked from are counted in both, but they do not grow with the triggers."
    )
    behind = [
        f"{LABELS.get(r['contender'], r['contender'])} made {share:.0%} of them"
        for r in results
        if (share := kept_up(r)) < KEEP_UP
    ]
    if behind:
        notes += (
            "\n\nA triggerer keeping up polls N / poll interval times a second; in the window, "
            + "; ".join(behind)
            + ": its polls queue behind one another, so each session is noticed later than its poll interval says."
        )
    if problems:
        notes += "\n\n" + "; ".join(problems) + "."
    return Section(title="Real triggerer", method=method_text(settings), tables=[table(results)], notes=notes)


def method_text(settings: RowSettings) -> str:
    """How the figures were taken."""
    return f"""A real `airflow triggerer` (Airflow 3.3, `--capacity {settings.triggers:,} --skip-serve-logs`, SQLite,
default settings otherwise) holding {settings.triggers:,} deferred sensor tasks' triggers polling every
{settings.poll_interval:g} s, `DevRevSessionTrigger` beside `HttpSensorTrigger` (the same request), one contender
after the other, each in a fresh `AIRFLOW_HOME` (`bench/triggerer_row.py`). The DAG maps one deferrable sensor
(`DevRevSessionSensor` / `HttpSensor`) over {settings.triggers:,} session ids; Airflow's `create_dagrun` makes the
task instances, and each is put into the state a real deferral leaves it in (`bench/triggerer_rows.py`): a
`trigger` row as Airflow 3.3's execution API writes it when a worker reports the deferral (the trigger object
built as in the capacity benchmark, `serialize()`d through serde), the task instance `deferred` with its
`trigger_id` and `next_method`. The triggerer picks them up as after real deferrals (`Trigger.clean_unused`, which
it runs every loop, is checked to keep them): running {settings.triggers:,} sensor tasks just to defer them would
cost more CPU than the row measures.

One warm-up trigger first; once it has polled, the others. Once the benchmark server has been asked for every
session, a {settings.window:g} s window in which every poll is a 404: *CPU per poll* = CPU time of the
triggerer's processes (the supervisor and the `TriggerRunner` it forks) / requests the server answered, and the
runner's alone; *RSS per trigger* = (RSS with all triggers - RSS with the warm-up one) / (N - 1). *Time to poll
all*: from deferring the N - 1 to the last first poll (the triggerer takes 50 new triggers per loop by default).
Then the sessions appear within {APPEAR_SPREAD_MS / 1000:g} s; *events fired*: task instances that left
`deferred` for `scheduled` with their trigger's "found" event in `next_kwargs` (the row fails unless all did).

Included here, unlike the in-loop capacity benchmark: the triggerer's own per-trigger work (its loop, DB
heartbeats and queries, trigger log routing through the supervisor)."""


# -- command line --------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.triggerer_row", description=__doc__.split("\n\n")[0] if __doc__ else None
    )
    parser.add_argument("--triggers", type=int, default=1000, help="deferred tasks (triggers) held by the triggerer")
    parser.add_argument("--poll-interval", type=float, default=5.0, help="the triggers' poll interval (s)")
    parser.add_argument("--contenders", default=",".join(CONTENDERS), help=f"a subset of {','.join(CONTENDERS)}")
    parser.add_argument("--window", type=float, default=30.0, help="the steady measurement window (s)")
    parser.add_argument("--json", type=Path, help="also write the rows (data) to this file")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Measure every contender, print the table (and the section's notes)."""
    args = parse_args(argv)
    settings = RowSettings(
        args.triggers, args.poll_interval, tuple(c for c in args.contenders.split(",") if c), args.window
    )
    with bench_server() as server, airflow_home() as scratch:
        logs = scratch / "logs"
        logs.mkdir()
        try:
            results = measure_all(server, airflow_environment(scratch, server.url), logs, settings)
        except RowError:
            kept = Path(tempfile.gettempdir()) / f"triggerer-row-logs-{os.getpid()}"
            shutil.copytree(logs, kept)
            print(f"logs kept in {kept}", file=sys.stderr)
            raise
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=1))
    print(section(results, settings).markdown())


if __name__ == "__main__":
    main()
