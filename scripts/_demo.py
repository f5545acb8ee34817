"""What the demo scripts share: how a step is announced and how an ``airflow`` command is run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

AIRFLOW = str(Path(sys.executable).with_name("airflow"))


def step(title: str) -> None:
    print(f"\n==> {title}", flush=True)


def airflow(*args: str, log: Path | None = None) -> None:
    """Run an ``airflow`` command; keep its chatter in a log file and show the tail only on failure."""
    out = open(log, "w") if log else None  # noqa: SIM115
    try:
        done = subprocess.run([AIRFLOW, *args], stdout=out or subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    finally:
        if out:
            out.close()
    text = log.read_text() if log else done.stdout
    if done.returncode != 0:
        print(text[-4000:])
        raise SystemExit(f"`airflow {' '.join(args)}` failed with exit code {done.returncode}")
    if not log:
        print(text.strip())


def airflow_environment(home: Path, repo: Path) -> dict[str, str]:
    """Airflow on the embedded SQLite DB in ``home``, reading the example DAGs, with connection tests on."""
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(repo / "dags" / "examples"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
        "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
    }
