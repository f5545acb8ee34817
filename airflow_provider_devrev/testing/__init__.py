"""A local DevRev observability API simulator for tests, demos and users' own DAG tests.

``from airflow_provider_devrev.testing import DevRevSimulator, DEFAULT_TOKEN, reset_caches``. Names are loaded on first
use: the pytest plugin lives in this package and is imported by every pytest run of every user who has
the provider installed, so importing the package must stay cheap (no ``http.server`` until needed).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_provider_devrev.testing.caches import reset_caches
    from airflow_provider_devrev.testing.data import (
        DEFAULT_TOKEN,
        SEED_ANDROID_SESSION_ID,
        SEED_IOS_SESSION_ID,
        SEED_VERSION_KEY,
        SEED_WEB_SESSION_ID,
        SEED_WEB_VERSION_KEY,
    )
    from airflow_provider_devrev.testing.simulator import DevRevSimulator, RecordedRequest

__all__ = [
    "DEFAULT_TOKEN",
    "SEED_ANDROID_SESSION_ID",
    "SEED_IOS_SESSION_ID",
    "SEED_VERSION_KEY",
    "SEED_WEB_SESSION_ID",
    "SEED_WEB_VERSION_KEY",
    "DevRevSimulator",
    "RecordedRequest",
    "reset_caches",
]

_WHERE = {
    "DevRevSimulator": "simulator",
    "RecordedRequest": "simulator",
    "DEFAULT_TOKEN": "data",
    "SEED_ANDROID_SESSION_ID": "data",
    "SEED_IOS_SESSION_ID": "data",
    "SEED_VERSION_KEY": "data",
    "SEED_WEB_SESSION_ID": "data",
    "SEED_WEB_VERSION_KEY": "data",
    "reset_caches": "caches",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
