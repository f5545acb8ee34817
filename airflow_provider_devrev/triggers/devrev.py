"""
DevRev triggers, at the import path (and classpath) they were first published under.

Each trigger lives in a module of its own: :mod:`~airflow_provider_devrev.triggers.session` (one session's
wait, for the deferrable sensor) and :mod:`~airflow_provider_devrev.triggers.new_sessions` (the watcher of an
``AssetWatcher``). Airflow stores a trigger's classpath with every trigger row, so both still serialize as
``airflow_provider_devrev.triggers.devrev.<name>``: triggers saved before the split resume unchanged.
"""

from __future__ import annotations

from airflow_provider_devrev.triggers._handover import SAVE_DELAY
from airflow_provider_devrev.triggers.new_sessions import (
    DEFAULT_EVENT_SPACING,
    MAX_ERROR_WAIT,
    DevRevNewSessionsTrigger,
)
from airflow_provider_devrev.triggers.session import (
    MIN_POLL_WAIT,
    SENSOR_TIMEOUT,
    DevRevSessionTrigger,
    error_event,
    session_from_event,
)

__all__ = [
    "DEFAULT_EVENT_SPACING",
    "MAX_ERROR_WAIT",
    "MIN_POLL_WAIT",
    "SAVE_DELAY",
    "SENSOR_TIMEOUT",
    "DevRevNewSessionsTrigger",
    "DevRevSessionTrigger",
    "error_event",
    "session_from_event",
]
