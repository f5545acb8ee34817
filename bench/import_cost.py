"""
DAG-parse cost: what importing the provider's operator and sensor modules adds to ``import airflow.sdk``, in
fresh interpreters, next to the http provider's sensor module.

Each measurement is its own interpreter: ``import airflow.sdk``, a marker, then the modules under test. Two
figures, medians of ``--repeat`` interpreters each:

- ``python -X importtime``: the cumulative time of the top-level imports after the marker, i.e. exactly
  what the DAG file's provider imports add (importtime itself inflates it a little);
- wall clock: ``time.perf_counter()`` around those imports, without importtime's overhead.

The same interpreter reports which heavy modules those imports loaded: aiohttp, tenacity and the
simulator must only load where they are used (triggerer, worker, tests).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass

from bench.harness import child_cwd
from bench.report import Section, Target
from bench.stats import fmt, markdown_table, median

MARKER = "--bench-import-marker--"
#: Modules a DAG file should not pay for: transports, retries, the simulator, the http machinery.
HEAVY = (
    "aiohttp",
    "yarl",
    "tenacity",
    "requests",
    "asgiref",
    "http.server",
    "airflow_provider_devrev.testing",
    "airflow_provider_devrev.hooks",
)
TARGET_MS = 50
#: What the issue requires to stay out of DAG parsing.
MUST_NOT_LOAD = ("aiohttp", "tenacity", "airflow_provider_devrev.testing")
DEVREV = "airflow-provider-devrev operators + sensors"
SUBJECTS: dict[str, tuple[str, ...]] = {
    DEVREV: (
        "airflow_provider_devrev.operators.devrev",
        "airflow_provider_devrev.sensors.devrev",
    ),
    "apache-airflow-providers-http sensor": ("airflow.providers.http.sensors.http",),
}


@dataclass
class ImportRun:
    """One fresh interpreter's figures for one subject."""

    importtime_seconds: float
    wall_seconds: float
    heavy_loaded: list[str]


def importtime_added(stderr: str) -> float:
    """Seconds of top-level imports after the marker in ``-X importtime`` output."""
    after_marker = stderr.split(MARKER, 1)[1]
    total_us = 0
    for line in after_marker.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _, cumulative, name = line.split("|", 2)
        # Nested imports are indented under their importer; top-level ones are not.
        if not name[1:].startswith(" "):
            total_us += int(cumulative.strip())
    return total_us / 1e6


def probe_code(modules: tuple[str, ...]) -> str:
    """The program run in the fresh interpreter: baseline import, marker, timed imports, a JSON report."""
    imports = "; ".join(f"import {module}" for module in modules)
    heavy = repr(HEAVY)
    return (
        "import sys, time, json; import airflow.sdk; "
        f"before = set(sys.modules); sys.stderr.write({MARKER!r} + '\\n'); sys.stderr.flush(); "
        f"t = time.perf_counter(); {imports}; elapsed = time.perf_counter() - t; "
        f"new = set(sys.modules) - before; "
        f"heavy = sorted(h for h in {heavy} if any(m == h or m.startswith(h + '.') for m in new)); "
        "print(json.dumps({'wall': elapsed, 'heavy': heavy}))"
    )


def run_once(modules: tuple[str, ...], env: Mapping[str, str]) -> ImportRun:
    """One fresh interpreter with ``-X importtime``."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", probe_code(modules)],
        cwd=child_cwd(env),
        env=dict(env),
        capture_output=True,
        text=True,
        check=True,
    )
    report = json.loads(done.stdout.strip().splitlines()[-1])
    return ImportRun(importtime_added(done.stderr), report["wall"], report["heavy"])


def run_wall_once(modules: tuple[str, ...], env: Mapping[str, str]) -> float:
    """One fresh interpreter without importtime: wall-clock seconds of the imports alone."""
    done = subprocess.run(
        [sys.executable, "-c", probe_code(modules)],
        cwd=child_cwd(env),
        env=dict(env),
        capture_output=True,
        text=True,
        check=True,
    )
    wall: float = json.loads(done.stdout.strip().splitlines()[-1])["wall"]
    return wall


def byte_compile(env: Mapping[str, str]) -> None:
    """
    Give every subject its bytecode first, as an installed package has it (pip compiles at install time):
    an interpreter that imports them with bytecode writing allowed. Without this, a source tree measured
    under ``PYTHONDONTWRITEBYTECODE`` (set on some machines and CI images) is compiled from source in every
    interpreter, while Airflow's own modules are not, and the figure measures the compiler, not the import.
    """
    writable = {key: value for key, value in env.items() if key != "PYTHONDONTWRITEBYTECODE"}
    for modules in SUBJECTS.values():
        run_wall_once(modules, writable)


def measure(env: Mapping[str, str], repeat: int) -> dict[str, list[ImportRun]]:
    """``repeat`` interpreters per subject, the subjects interleaved so machine noise hits both alike."""
    byte_compile(env)
    runs: dict[str, list[ImportRun]] = {name: [] for name in SUBJECTS}
    for _ in range(repeat):
        for name, modules in SUBJECTS.items():
            timed = run_once(modules, env)
            timed.wall_seconds = run_wall_once(modules, env)
            runs[name].append(timed)
    return runs


def run(env: Mapping[str, str], repeat: int) -> Section:
    """Measure and describe."""
    return section(measure(env, repeat), repeat)


def section(runs: dict[str, list[ImportRun]], repeat: int) -> Section:
    """One row per subject; the target is on the DevRev modules."""
    rows = []
    for name, measured in runs.items():
        heavy = sorted({module for run in measured for module in run.heavy_loaded})
        rows.append(
            [
                name,
                fmt(median(r.importtime_seconds * 1000 for r in measured), 1, " ms"),
                fmt(median(r.wall_seconds * 1000 for r in measured), 1, " ms"),
                ", ".join(f"`{module}`" for module in heavy) or "none",
            ]
        )
    header = [
        "imported after `import airflow.sdk`",
        "adds (-X importtime)",
        "adds (wall clock)",
        "heavy modules loaded",
    ]
    devrev = runs[DEVREV]
    added = median(r.importtime_seconds * 1000 for r in devrev)
    heavy = sorted({module for run in devrev for module in run.heavy_loaded if module in MUST_NOT_LOAD})
    return Section(
        title="DAG-parse cost",
        method=f"""A fresh interpreter per measurement ({repeat} per row, interleaved, medians): `import airflow.sdk`,
then the modules a DAG file imports, byte-compiled first as an installed package is (pip compiles at
install time; a source tree under `PYTHONDONTWRITEBYTECODE` would be compiled again in every
interpreter). *adds (-X importtime)* is the cumulative time of the top-level imports after `airflow.sdk`,
from `python -X importtime`; *adds (wall clock)* is `time.perf_counter()` around the same imports in an
interpreter without `-X importtime`. *Heavy modules loaded* are those of
{", ".join(f"`{module}`" for module in HEAVY)} that the imports loaded (and `airflow.sdk` had not).""",
        tables=[markdown_table(header, rows)],
        targets=[
            Target(
                "provider imports over `import airflow.sdk`", f"≤ {TARGET_MS} ms", f"{added:.1f} ms", added <= TARGET_MS
            ),
            Target(
                "aiohttp, tenacity, the simulator loaded at DAG parse",
                "none",
                ", ".join(heavy) or "none",
                not heavy,
            ),
        ],
    )
