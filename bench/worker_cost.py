"""Benchmark 5, worker cost of one wait: runs :mod:`bench.sensor_worker` in a fresh process, builds its section."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bench.harness import BenchServer, run_child
from bench.report import Section
from bench.sensor_worker import APPEAR_AFTER_MS
from bench.stats import markdown_table

WHERE = {
    "poke": "worker slot, sleeping between pokes",
    "reschedule": "worker slot only while poking; the scheduler waits between pokes",
    "deferrable": "worker slot for the first poke and the resume; the triggerer polls in between",
}


def run(server: BenchServer, env: Mapping[str, str], log_dir: Path, poke_interval: float) -> Section:
    """Measure and describe."""
    args = ["--poke-interval", str(poke_interval), "--control-port", str(server.control_port)]
    modes: list[dict[str, Any]] = run_child("sensor_worker", args, env, log_dir)["modes"]
    return section(modes, poke_interval)


def seconds(value: float) -> str:
    """Seconds with a precision that suits the magnitude."""
    return f"{value:,.1f} s" if value >= 1 else f"{value * 1000:,.0f} ms"


def section(modes: list[dict[str, Any]], poke_interval: float) -> Section:
    """One row per mode."""
    rows = [
        [
            f"`mode={m['mode']!r}`" if m["mode"] != "deferrable" else "`deferrable=True`",
            str(m["requests"]),
            str(m["connections"]),
            str(m["task_starts"]),
            seconds(m["worker_slot_seconds"]),
            seconds(m["triggerer_seconds"]) if m["triggerer_seconds"] else "-",
            WHERE[m["mode"]],
        ]
        for m in modes
    ]
    header = [
        "sensor",
        "requests to DevRev",
        "TCP connections",
        "task starts on a worker",
        "worker slot held",
        "wait in the triggerer",
        "where the wait happens",
    ]
    appear = APPEAR_AFTER_MS / 1000
    return Section(
        title="Worker cost of one wait",
        method=f"""One `DevRevSessionSensor` (`poke_interval={poke_interval:g}`) waiting for a session that appears
{appear:g} s after it starts, in each mode, on a simulated clock (`bench/sensor_worker.py`): every sleep, reschedule
and trigger sleep moves the process's and the server's clocks forward at once, so the session appears exactly
when it would have; the requests are real and counted by the server. Reschedule mode builds a new sensor per
poke and deferrable mode a new one to resume, as Airflow does in a new process; each such *task start* also
costs Airflow's own start-up on a worker (a process, the DAG file parsed, API calls), which is not
included in *worker slot held*.""",
        tables=[markdown_table(header, rows)],
    )
