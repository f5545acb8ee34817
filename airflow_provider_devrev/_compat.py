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
- Airflow's date-time trigger moved from core to the standard provider in 3.0 (:func:`date_time_trigger`).
- Async connection lookup: ``BaseHook.aget_connection`` exists only from 3.1, and before 3.3.2 it masks
  secrets with a blocking call that can deadlock a busy event loop; common-compat's
  ``get_async_connection`` picks the safe path per version, and :func:`amask_secret` does the same for
  the token forms the provider masks itself.
- When a rescheduled sensor started waiting (:func:`reschedule_started_at`): a Task SDK method on 3.x, a
  private query of ``airflow.sensors.base`` on 2.11.
- Which operators the scheduler holds until their reschedule date (:class:`ReschedulesLikeASensor`): sensors
  only, before 3.3; how a non-sensor gets the same treatment differs between 2.11 and 3.0.
"""

from __future__ import annotations

import functools
from datetime import datetime
from typing import TYPE_CHECKING, Any

from airflow import __version__ as _airflow_version
from airflow.providers.common.compat.sdk import (
    AirflowException,
    AirflowFailException,
    AirflowSensorTimeout,
    AirflowSkipException,
    BaseHook,
    BaseOperator,
    BaseOperatorLink,
    BaseSensorOperator,
    Context,
    PokeReturnValue,
    conf,
    mask_secret,
)

try:  # Airflow 3
    from airflow.sdk.exceptions import AirflowRescheduleException
except ImportError:  # Airflow 2.11
    from airflow.exceptions import AirflowRescheduleException  # type: ignore[no-redef,attr-defined]

if TYPE_CHECKING:
    from airflow.triggers.base import BaseEventTrigger, BaseTrigger


def __getattr__(name: str) -> Any:
    """
    ``BaseEventTrigger``, imported when first asked for: ``airflow.triggers.base`` costs a DAG file about a
    third of the provider's import time, and only the asset watcher's trigger module needs it (the
    operators and sensors import their triggers when they defer).
    """
    if name != "BaseEventTrigger":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    try:
        from airflow.triggers.base import BaseEventTrigger
    except ImportError:  # Airflow 2.11: no event-driven scheduling
        from airflow.triggers.base import BaseTrigger as BaseEventTrigger  # type: ignore[assignment]
    return BaseEventTrigger


async def amask_secret(secret: str) -> None:
    """
    ``mask_secret`` for code running on an event loop (a trigger).

    Airflow 3.3.2's Task SDK has ``airflow.sdk.log.amask_secret``, which tells the supervisor with an
    asynchronous send; its blocking ``mask_secret`` must not be called from the loop (it raises
    ``DeadlockImminentError`` while another request to the supervisor is in flight), nor from a worker
    thread at the same time as the loop talks to the supervisor (both would use one channel). Older
    versions have no async form and their ``mask_secret`` is safe in a worker thread, as common-compat's
    ``get_async_extra_dejson`` does it. ``airflow.sdk.log`` is where the SDK defines both functions; no
    shorter public path exports the async one yet.
    """
    try:
        from airflow.sdk.log import amask_secret as sdk_amask_secret
    except ImportError:  # Airflow 2.11 to 3.3.1
        from asgiref.sync import sync_to_async

        await sync_to_async(mask_secret)(secret)
    else:
        await sdk_amask_secret(secret)


def date_time_trigger(moment: datetime) -> BaseTrigger:
    """Airflow's own trigger that fires at ``moment``: the standard provider's on 3.x, core's on 2.11.

    Imported when a task defers, not at DAG-parse time.
    """
    try:
        from airflow.providers.standard.triggers.temporal import DateTimeTrigger
    except ImportError:  # Airflow 2.11: still in core
        from airflow.triggers.temporal import DateTimeTrigger  # type: ignore[no-redef]
    return DateTimeTrigger(moment=moment)


def reschedule_started_at(sensor: Any, context: Any) -> float | None:
    """
    When a sensor in reschedule mode started waiting (Unix time), as ``BaseSensorOperator.execute`` counts its
    timeout: the start of the first reschedule of this try, or ``None`` before the first reschedule.

    The sensor needs it before its check, to stop retrying at its deadline; Airflow computes it inside
    ``execute`` and exposes it nowhere. On 3.x the Task SDK's ``get_first_reschedule_date`` is public; on
    2.11 the same query is the private ``_orig_start_date`` of ``airflow.sensors.base``, used here only.
    """
    ti = context["ti"]
    if hasattr(ti, "get_first_reschedule_date"):  # Airflow 3
        first = ti.get_first_reschedule_date(context)
    else:  # Airflow 2.11
        from airflow.sensors.base import _orig_start_date

        first_try_number = (ti.max_tries or 0) - (sensor.retries or 0) + 1
        first = _orig_start_date(
            dag_id=ti.dag_id, task_id=ti.task_id, run_id=ti.run_id, map_index=ti.map_index, try_number=first_try_number
        )
    if isinstance(first, str):  # Airflow 3.0's dag.test() hands the date over as text
        first = datetime.fromisoformat(first)
    return first.timestamp() if first is not None else None


_AIRFLOW_2 = int(_airflow_version.split(".")[0]) < 3
_MAPPED_NEED_THE_FLAG = not _AIRFLOW_2 and tuple(int(part) for part in _airflow_version.split(".")[:2]) < (3, 3)


class ReschedulesLikeASensor:
    """
    Mixin for an operator that raises ``AirflowRescheduleException`` without being a sensor: the scheduler then
    holds it until the reschedule date, as it holds a sensor in reschedule mode, instead of running it again at
    once (over and over until the date has passed). The operator tells with a ``reschedule`` property whether
    it may reschedule.

    Airflow checks a reschedule date with ``ReadyToRescheduleDep``, and before 3.3 only for sensors (3.3 checks
    it for every task instance up for reschedule). What "sensor" means there is private and differs:

    - 2.11: the dep is in the operator's class-level ``deps``, which the scheduler's copy of the DAG keeps
      (``SerializedBaseOperator`` serializes ``deps`` when they are not ``BaseOperator``'s, by class path, and
      accepts any class under ``airflow.ti_deps.deps``); ``dags test`` checks the DAG file's own operator.
    - 3.0 to 3.2: the serialized ``_is_sensor`` flag, from which the scheduler's deserializer adds the dep.

    In both the dep passes at once unless the task's ``reschedule`` is true, so ``reschedule`` is serialized
    too, as ``BaseSensorOperator`` does. A mapped task (``.partial().expand()``) is a ``MappedOperator``, which
    on 2.11 takes the class's ``deps`` and on 3.0 to 3.2 sets ``_is_sensor`` only for ``BaseSensorOperator``
    subclasses: there ``partial`` hands back an ``OperatorPartial`` that sets it (:func:`_flagging_partial`).
    That reaches the scheduler only: 3.0's ``dag.test()`` checks the DAG file's own ``MappedOperator``, which
    ``ReadyToRescheduleDep`` takes for unmapped and without ``reschedule``, so it still reruns such a task at once.
    """

    _is_sensor = True

    if _AIRFLOW_2:
        from airflow.ti_deps.deps.ready_to_reschedule import ReadyToRescheduleDep

        deps = BaseOperator.deps | {ReadyToRescheduleDep()}  # type: ignore[attr-defined]  # 2.11 only
        del ReadyToRescheduleDep

    @classmethod
    def get_serialized_fields(cls) -> frozenset[str]:
        fields: frozenset[str] = super().get_serialized_fields()  # type: ignore[misc]
        return fields | ({"reschedule"} if _AIRFLOW_2 else {"reschedule", "_is_sensor"})

    if _MAPPED_NEED_THE_FLAG:

        @classmethod
        def partial(cls, **kwargs: Any) -> Any:
            return _flagging_partial(super().partial(**kwargs))  # type: ignore[misc]


@functools.cache
def _flagging_partial_class() -> type:
    import attrs
    from airflow.sdk.definitions.mappedoperator import OperatorPartial

    @attrs.define(kw_only=True, repr=False)
    class FlaggingPartial(OperatorPartial):  # type: ignore[misc]
        def _expand(self, expand_input: Any, *, strict: bool) -> Any:
            mapped = super()._expand(expand_input, strict=strict)
            mapped._is_sensor = True
            return mapped

    return FlaggingPartial


def _flagging_partial(partial: Any) -> Any:
    """
    ``partial``, as an ``OperatorPartial`` whose ``expand`` gives a ``MappedOperator`` flagged ``_is_sensor``
    (Airflow 3.0 to 3.2 flag only ``BaseSensorOperator`` subclasses, in the private ``_expand``).
    """
    flagging = _flagging_partial_class()(
        operator_class=partial.operator_class, kwargs=partial.kwargs, params=partial.params
    )
    # The original is replaced, not forgotten: it would warn "was never mapped" when collected.
    partial._expand_called = True
    return flagging


def stats() -> Any:
    """Airflow's metrics object: ``airflow.sdk.observability.stats`` on 3.3 (a module of functions),
    ``airflow.stats.Stats`` on 2.11 and 3.0; both have ``incr(name, count)``. Imported on first use."""
    try:
        from airflow.sdk.observability import stats as sdk_stats
    except ImportError:  # Airflow 2.11 to 3.2
        from airflow.stats import Stats

        return Stats
    return sdk_stats


__all__ = [
    "AirflowException",
    "AirflowFailException",
    "AirflowRescheduleException",
    "AirflowSensorTimeout",
    "AirflowSkipException",
    "BaseEventTrigger",
    "BaseHook",
    "BaseOperator",
    "BaseOperatorLink",
    "BaseSensorOperator",
    "Context",
    "PokeReturnValue",
    "ReschedulesLikeASensor",
    "amask_secret",
    "conf",
    "date_time_trigger",
    "mask_secret",
    "reschedule_started_at",
    "stats",
]
