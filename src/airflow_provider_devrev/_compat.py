"""
The one place where Airflow 2.11 and Airflow 3.x differ for this provider.

Everything Airflow-facing is imported from here. ``airflow.providers.common.compat.sdk`` resolves each name
to ``airflow.sdk`` on Airflow 3 (so nothing warns as deprecated on 3.3) and to the old core path on 2.11,
lazily, so importing this module stays cheap at DAG-parse time.

Differences handled here:

- Base classes, ``conf``, exceptions and ``mask_secret``: through common-compat's lazy aliases.
- Triggers: ``BaseTrigger``/``TriggerEvent`` live in core on every supported version. ``BaseEventTrigger``
  (what an ``AssetWatcher`` accepts) exists from Airflow 3.0; on 2.11 the event trigger is a plain trigger
  that nothing can watch.
- Async connection lookup: ``BaseHook.aget_connection`` exists only from 3.1, and before 3.3.2 it masks
  secrets with a blocking call that can deadlock a busy event loop; common-compat's
  ``get_async_connection`` picks the safe path per version.
"""

from __future__ import annotations

from airflow.providers.common.compat.sdk import (
    AirflowException,
    AirflowFailException,
    AirflowSensorTimeout,
    AirflowSkipException,
    BaseHook,
    BaseOperator,
    BaseSensorOperator,
    Context,
    PokeReturnValue,
    conf,
    mask_secret,
)

try:
    from airflow.triggers.base import BaseEventTrigger
except ImportError:  # Airflow 2.11: no event-driven scheduling
    from airflow.triggers.base import BaseTrigger as BaseEventTrigger  # type: ignore[assignment]

__all__ = [
    "AirflowException",
    "AirflowFailException",
    "AirflowSensorTimeout",
    "AirflowSkipException",
    "BaseEventTrigger",
    "BaseHook",
    "BaseOperator",
    "BaseSensorOperator",
    "Context",
    "PokeReturnValue",
    "conf",
    "mask_secret",
]
