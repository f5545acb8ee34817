"""
Real Airflow runs (``dag.test()``) against the simulator, in this test process.

One metadata DB is created per test session (in the temporary Airflow home set by ``tests/conftest.py``),
and the dags folder holds the example DAGs plus the failure-path DAGs of ``tests/e2e/dags``.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
E2E_DAGS = Path(__file__).resolve().parent / "dags"


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """Populate the dags folder and create the metadata DB once per test session."""
    dags_folder = Path(os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
    dags_folder.mkdir(parents=True, exist_ok=True)
    for source in [*sorted((REPO / "dags" / "examples").glob("*.py")), *sorted(E2E_DAGS.glob("*.py"))]:
        shutil.copy(source, dags_folder / source.name)

    from airflow.utils.db import resetdb

    resetdb()
    return dags_folder


@pytest.fixture
def fast_examples(monkeypatch):
    """The example DAGs poll every 0.2 s here instead of every minute."""
    monkeypatch.setenv("DEVREV_EXAMPLE_POKE_INTERVAL", "0.2")
    monkeypatch.setenv("DEVREV_EXAMPLE_SENSOR_TIMEOUT", "30")
