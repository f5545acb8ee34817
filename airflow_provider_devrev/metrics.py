"""
The provider's metrics, through Airflow's own metrics interface (StatsD or OpenTelemetry, as the deployment
configures ``[metrics]``), every name under ``devrev.``:

- ``devrev.requests.<endpoint>.<status>``: each attempt, by endpoint (``observability_sessions_list``,
  ``observability_sessions_get``, ``dev-users_self``) and the status it got, counted as the status line arrives;
  ``no_response`` when none came (refused, reset, timed out, a TLS or proxy failure), in both transports.
- ``devrev.retries``: each retry the hook makes; ``devrev.rate_limited``: each 429 waited out (the hook's
  retries and ``get_sessions``' shared pauses); ``devrev.rate_limited_wait_seconds``: the seconds waited.
- ``devrev.sessions_exported``: sessions written or returned by ``ListSessionsOperator``.
- ``devrev.watcher.polls``, ``devrev.watcher.poll_errors``, ``devrev.watcher.events`` (events handed to
  Airflow) and ``devrev.watcher.sessions`` (sessions in them): the ``DevRevNewSessionsTrigger``.

A metric never fails the work it counts: any error of the metrics backend is swallowed.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

PREFIX = "devrev"

_log = logging.getLogger(__name__)
# 429 pauses in this process, for the progress lines of long work (the counter above goes to Airflow).
_rate_limited = 0


@functools.cache
def _stats() -> Any:
    # Looked up once: on Airflow 2.11 and 3.0 the lookup fails an import first, and every poll of every
    # trigger counts its answer. Both objects it can return dispatch to the configured backend at each call.
    from airflow_provider_devrev._compat import stats

    return stats()


#: The ``[metrics]`` switches with which Airflow builds a backend that sends anything (its
#: ``get_stats_factory``): DogStatsD, StatsD, OpenTelemetry.
_BACKEND_SWITCHES = ("statsd_datadog_enabled", "statsd_on", "otel_on")


@functools.cache
def _enabled() -> bool:
    # Read once per process, like Airflow's own choice of backend. With every switch off, Airflow's metrics
    # object still looks each name up in its registry before dropping the count: a few microseconds per
    # poll of every trigger, for nothing.
    from airflow_provider_devrev._compat import conf

    return any(conf.getboolean("metrics", switch, fallback=False) for switch in _BACKEND_SWITCHES)


def clear_caches() -> None:
    """
    Read the ``[metrics]`` switches again at the next count, for tests that change them between them. Airflow's
    metrics object is kept (it reads its backend at each call), and so is the count of 429 pauses (not a cache).
    """
    _enabled.cache_clear()


def incr(name: str, count: int = 1) -> None:
    """Add ``count`` to the counter ``devrev.<name>`` (nothing, when Airflow sends no metrics)."""
    if count <= 0 or not _enabled():
        return
    try:
        _stats().incr(f"{PREFIX}.{name}", count)
    except Exception as err:  # a metrics backend's failure is not the task's
        _log.debug("Could not emit metric %s.%s: %s", PREFIX, name, err)


def request_answered(path: str, status: int | None) -> None:
    """Count one answer (or none) from ``path``, e.g. ``/observability.sessions.list``."""
    if _enabled():  # checked first: every poll of every trigger comes here, and most deployments send nothing
        incr(_answer_metric(path, status))


@functools.lru_cache(maxsize=256)
def _answer_metric(path: str, status: int | None) -> str:
    # A handful of endpoints and statuses, named again at every poll otherwise.
    endpoint = path.strip("/").replace(".", "_") or "root"
    return f"requests.{endpoint}.{status if status is not None else 'no_response'}"


def retry_waited(status: int | None, wait: float) -> None:
    """Count one retry, and a 429's wait."""
    incr("retries")
    if status == 429:
        rate_limited(wait)


def rate_limited(wait: float) -> None:
    """Count one 429 waited out, and its wait."""
    global _rate_limited
    _rate_limited += 1
    incr("rate_limited")
    incr("rate_limited_wait_seconds", round(wait))


def rate_limited_count() -> int:
    """429 pauses waited out by this process so far."""
    return _rate_limited
