"""The complete examples the docs show are run, as a user would run them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"


def test_the_testing_your_own_dags_example_passes_in_a_fresh_pytest() -> None:
    # A fresh process without this suite's Airflow set-up: the example's conftest makes its own Airflow home,
    # migrates its database and serializes its DAGs, as the page tells users to.
    env = {name: value for name, value in os.environ.items() if not name.startswith(("AIRFLOW", "DEVREV_"))}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rA", str(EXAMPLES)],
        cwd=EXAMPLES,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    summary = result.stdout[-3000:] + result.stderr[-3000:]
    assert result.returncode == 0, summary
    assert "PASSED test_triage_session.py::test_the_sensor_waits_until_the_session_is_uploaded" in result.stdout
    assert "PASSED test_triage_session.py::test_a_seeded_session_is_there_at_once" in result.stdout
