"""
Real Airflow runs (``dag.test()``) against the simulator, in this test process.

The metadata DB and dags folder come from ``tests/conftest.py`` (fixture ``airflow_db``).
"""

from __future__ import annotations

import pytest


@pytest.fixture
def fast_examples(monkeypatch):
    """The example DAGs poll every 0.2 s here instead of every minute."""
    monkeypatch.setenv("DEVREV_EXAMPLE_POKE_INTERVAL", "0.2")
    monkeypatch.setenv("DEVREV_EXAMPLE_SENSOR_TIMEOUT", "30")
