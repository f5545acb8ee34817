"""Airflow set-up for testing your own DAGs: a throw-away Airflow home, its database, your DAGs serialized.

Everything at module level runs before anything imports Airflow, which reads its configuration once.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

# Where your DAG files are: here, beside this file.
DAGS_FOLDER = Path(__file__).parent / "dags"

AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="airflow-home-"))
os.environ["AIRFLOW_HOME"] = str(AIRFLOW_HOME)
os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{AIRFLOW_HOME}/airflow.db"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(DAGS_FOLDER)
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"


@pytest.fixture(scope="session")
def airflow_db() -> Iterator[Path]:
    """Create the metadata DB and serialize the DAGs folder into it, once per test run.

    Airflow 3's ``dag.test()`` refuses a DAG that is not serialized ("the dag is not serialized"), so the
    DAGs are written to the DB the way the dag processor writes them.
    """
    airflow = str(Path(sys.executable).with_name("airflow"))
    subprocess.run([airflow, "db", "migrate"], check=True, capture_output=True, timeout=600)
    subprocess.run([airflow, "dags", "reserialize"], check=True, capture_output=True, timeout=600)
    yield DAGS_FOLDER
    shutil.rmtree(AIRFLOW_HOME, ignore_errors=True)


@pytest.fixture
def dag_bag(airflow_db: Path):  # type: ignore[no-untyped-def]
    """Your DAGs, parsed as the dag processor parses them; a test fails on any import error."""
    try:
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:  # Airflow 2.11 and 3.0
        from airflow.models.dagbag import DagBag  # type: ignore[no-redef]
    bag = DagBag(dag_folder=str(airflow_db))
    assert not bag.import_errors, bag.import_errors
    return bag
