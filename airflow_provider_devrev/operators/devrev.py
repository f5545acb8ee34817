"""Fetch DevRev sessions (one by id, or every one of a data interval) and hand them to downstream tasks."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow_provider_devrev import metrics
from airflow_provider_devrev._arguments import SessionArgumentsMixin, validate_listing_arguments
from airflow_provider_devrev._compat import (
    AirflowFailException,
    AirflowRescheduleException,
    BaseOperator,
    ReschedulesLikeASensor,
    conf,
    date_time_trigger,
)
from airflow_provider_devrev._export_files import count_sessions, late_files, never_fewer, session_ids, without
from airflow_provider_devrev._json_text import json_text
from airflow_provider_devrev._storage import published_atomically, storage_path
from airflow_provider_devrev.connection import HookOptions
from airflow_provider_devrev.contract import summarize_session
from airflow_provider_devrev.exceptions import DevRevInvalidInputError
from airflow_provider_devrev.lineage import OpenLineageMixin
from airflow_provider_devrev.links import DevRevSessionLink, keep_session_url
from airflow_provider_devrev.listing import to_utc
from airflow_provider_devrev.operators.recording import GetSessionRecordingOperator as GetSessionRecordingOperator
from airflow_provider_devrev.operators.sessions import GetSessionsOperator as GetSessionsOperator
from airflow_provider_devrev.settle import DEFAULT_SETTLE, validate_settle, wait_until

if TYPE_CHECKING:
    from airflow_provider_devrev._compat import Context

#: Sessions a ListSessionsOperator returns as XCom at most: about 2 KB each, so about 2 MB in the metadata DB.
DEFAULT_MAX_XCOM_SESSIONS = 1000


class GetSessionOperator(OpenLineageMixin, SessionArgumentsMixin, BaseOperator):
    """
    Fetch one session from DevRev and return it, so it becomes this task's ``return_value`` XCom.

    The XCom is the ``session`` object exactly as DevRev sent it (a JSON dict: ``type``, ``session_id``,
    ``created_at``, ``is_crash``, ``device_metadata``, ...). The task fails if the session does not exist:
    use :class:`~airflow_provider_devrev.sensors.devrev.DevRevSessionSensor` first to wait for an upload.

    Arguments that are plain values are checked when the DAG file is parsed, so ``platform="windows"`` is
    an import error naming the field; templated ones are checked after rendering, before any request.

    :param platform: ``android``, ``ios`` or ``web``. Templated.
    :param session_id: The session's id. Templated; works with ``.expand(session_id=[...])``.
    :param version_key: The app version key the session was recorded under. Templated.
    :param devrev_conn_id: The DevRev connection. Templated.
    :param timeout: Seconds to wait for each read of an answer (overrides the connection's ``timeout``).
    :param max_retries: Retries of a 429, 5xx, connection error or timeout (overrides the connection's).
    :param max_retry_wait: Longest ``Retry-After`` waited out; a longer one fails the task at once.
    """

    template_fields: Sequence[str] = SessionArgumentsMixin.SESSION_TEMPLATE_FIELDS
    ui_color = "#e6f0ff"
    operator_extra_links = (DevRevSessionLink(),)

    def __init__(
        self,
        *,
        platform: str,
        session_id: str,
        version_key: str,
        devrev_conn_id: str = "devrev_default",
        timeout: float | None = None,
        max_retries: int | None = None,
        max_retry_wait: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._set_session_arguments(
            platform=platform,
            session_id=session_id,
            version_key=version_key,
            devrev_conn_id=devrev_conn_id,
            hook_options=HookOptions(timeout=timeout, max_retries=max_retries, max_retry_wait=max_retry_wait),
        )

    def execute(self, context: Context) -> dict[str, Any]:
        try:
            session = self.hook.get_session(self.platform, self.session_id, self.version_key)
        finally:  # a failed fetch keeps its link too: it is where a user goes to see why
            keep_session_url(self, context, self.hook.settings_read, **self.session_values())
        self.log.info("Fetched %s", summarize_session(session))
        return session


class ListSessionsOperator(OpenLineageMixin, ReschedulesLikeASensor, BaseOperator):
    """
    List the sessions created in this run's data interval, for an export or a downstream fan-out.

    By default the interval is ``created_at`` in ``[data_interval_start, data_interval_end)``: a session
    created exactly at ``data_interval_end`` belongs to the next run, so consecutive runs, reruns and
    backfills each list every session once, with no overlap and no gap. ``created_after`` and
    ``created_before`` override either end. A run whose interval is empty (Airflow 3's default cron
    timetable gives manual and cron runs a zero-width interval) fails with an explanation rather than
    silently exporting nothing; use ``CronDataIntervalTimetable`` (or pass both bounds).

    Late uploads: DevRev's SDKs upload a session after it ends (a crash usually when the app is next
    launched), so a session created at 23:50 may only appear at 00:30. The task therefore does not list
    before ``created_before + settle`` (two hours by default). Until then, a deferrable task (the default
    follows ``[operators] default_deferrable``) defers on Airflow's date-time trigger and frees its worker
    slot; otherwise it is rescheduled for that moment, as a sensor in reschedule mode is. Once that moment
    has passed (a backfill, a rerun) it lists at once. A session uploaded later than ``settle`` after its
    interval ended is in no file: raise ``settle`` if your users' uploads come later, or list the interval
    again later with :class:`~airflow_provider_devrev.operators.sweep.SweepLateSessionsOperator`.

    Where the result goes:

    - without ``output_path``, the sessions themselves become the ``return_value`` XCom (a list of session
      objects). XCom lives in Airflow's database, so above ``max_xcom_sessions`` the task fails before
      fetching more, and says to set ``output_path``.
    - with ``output_path``, the sessions are streamed as JSON Lines (one session object per line) to that
      path through Airflow's ``ObjectStoragePath``: a local path, ``file://...``, or any object-store URL
      Airflow has a provider for (``s3://...``, ``gs://...``), with ``conn_id`` as ObjectStoragePath takes it
      (``s3://aws_default@bucket/key``). The XCom is ``{"path": ..., "count": ...}``. A rerun overwrites the
      file, but never with fewer sessions than it holds: such a rerun (DevRev's retention removed some) fails,
      giving both counts, and leaves the file as it is, unless ``allow_shrink=True``. Sessions a
      :class:`~airflow_provider_devrev.operators.sweep.SweepLateSessionsOperator` put in a ``.late-<n>`` file
      beside it are left out of a rerun's file, so each session stays in one file. Readers never see half an
      export and a failed run leaves none: on S3 the object is written in place inside the filesystem's
      transaction (uploaded once, completed on success, discarded on error); elsewhere the file is written
      beside the target and moved into place once complete (a rename on a local disk, a copy on other object
      stores).
      An export first clears what a killed export of the same path left: its partial files on a local disk,
      its unfinished multipart uploads on S3.

    :param platform: ``android``, ``ios`` or ``web``. Templated.
    :param version_key: The app version key. Templated.
    :param filters: DevRev session filters, e.g. ``{"is_crash": True}``; names are checked against the
        contract. Templated.
    :param created_after: Inclusive lower bound; default ``data_interval_start``. Templated.
    :param created_before: Exclusive upper bound; default ``data_interval_end``. Templated.
    :param use_data_interval: ``False`` lists without date bounds (except the ones given).
    :param output_path: Where to write JSON Lines; ``None`` returns the sessions as the XCom. Templated,
        e.g. ``"file:///data/devrev/{{ data_interval_start | ds }}/crashes.jsonl"``: name it by the interval,
        not by ``{{ ds }}``, which two runs with different intervals can share.
    :param allow_shrink: Let a rerun replace ``output_path`` with a file holding fewer sessions (default
        ``False``: such a rerun fails and keeps the file). Set it to apply an erasure request.
    :param max_xcom_sessions: The most sessions returned as XCom (default 1,000).
    :param page_size: Sessions per request (1 to 100); DevRev's default when left out.
    :param settle: How long after the interval's end (``created_before``) to wait before listing, so that
        sessions uploaded late are in (a ``timedelta``, default two hours; ``timedelta(0)`` lists at once).
        Ignored when there is no upper bound.
    :param deferrable: Wait for ``settle`` on the triggerer instead of in reschedule mode (default
        ``[operators] default_deferrable``).
    :param devrev_conn_id: The DevRev connection. Templated.
    :param timeout: Seconds to wait for each read of an answer (overrides the connection's ``timeout``).
    :param max_retries: Retries of a 429, 5xx, connection error or timeout (overrides the connection's).
    :param max_retry_wait: Longest ``Retry-After`` waited out; a longer one fails the task at once.
    """

    #: The current time; tests replace it with the clock their simulator runs on.
    clock: Callable[[], datetime] = staticmethod(lambda: datetime.now(UTC))

    template_fields: Sequence[str] = (
        "platform",
        "version_key",
        "filters",
        "created_after",
        "created_before",
        "output_path",
        "devrev_conn_id",
    )
    ui_color = "#e6f0ff"

    def __init__(
        self,
        *,
        platform: str,
        version_key: str,
        filters: dict[str, Any] | None = None,
        created_after: Any = None,
        created_before: Any = None,
        use_data_interval: bool = True,
        output_path: Any = None,
        allow_shrink: bool = False,
        max_xcom_sessions: int = DEFAULT_MAX_XCOM_SESSIONS,
        page_size: int | None = None,
        settle: timedelta = DEFAULT_SETTLE,
        deferrable: bool | None = None,
        devrev_conn_id: str = "devrev_default",
        timeout: float | None = None,
        max_retries: int | None = None,
        max_retry_wait: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        validate_listing_arguments(platform, version_key, filters)
        self.settle = validate_settle(settle)
        if deferrable is None:
            deferrable = conf.getboolean("operators", "default_deferrable", fallback=False)
        self.deferrable = bool(deferrable)
        if isinstance(max_xcom_sessions, bool) or not isinstance(max_xcom_sessions, int) or max_xcom_sessions < 1:
            raise DevRevInvalidInputError("max_xcom_sessions", max_xcom_sessions, "must be an int >= 1")
        self.platform = platform
        self.version_key = version_key
        self.filters = filters
        self.created_after = created_after
        self.created_before = created_before
        self.use_data_interval = use_data_interval
        self.output_path = output_path
        self.allow_shrink = bool(allow_shrink)
        self.max_xcom_sessions = max_xcom_sessions
        self.page_size = page_size
        self.devrev_conn_id = devrev_conn_id
        self.hook_options = HookOptions(timeout=timeout, max_retries=max_retries, max_retry_wait=max_retry_wait)

    @property
    def reschedule(self) -> bool:
        """Read by Airflow's scheduler (serialized, see :class:`ReschedulesLikeASensor`): a non-deferrable task
        waits for ``settle`` as a rescheduled sensor does, held by the scheduler until the moment."""
        return not self.deferrable

    def execute(self, context: Context) -> list[dict[str, Any]] | dict[str, Any]:
        after, before = self._interval(context)
        ready = wait_until(to_utc(before, "created_before"), self.settle, type(self).clock())
        if ready is not None:
            how = "deferring" if self.deferrable else "rescheduling"
            self.log.info(
                "Sessions of this interval may still be uploading: %s until %s (created_before + settle %s)",
                how,
                ready.isoformat(),
                self.settle,
            )
            if self.deferrable:
                self.defer(trigger=date_time_trigger(ready), method_name="execute_complete")
            raise AirflowRescheduleException(ready)
        return self._list(after, before)

    def execute_complete(self, context: Context, event: Any = None) -> list[dict[str, Any]] | dict[str, Any]:
        """Resume after the date-time trigger fired at ``created_before + settle``: list the interval now."""
        after, before = self._interval(context)
        return self._list(after, before)

    def _list(self, after: Any, before: Any) -> list[dict[str, Any]] | dict[str, Any]:
        sessions = self.hook.iter_sessions(
            self.platform,
            self.version_key,
            filters=self.filters,
            created_after=after,
            created_before=before,
            page_size=self.page_size,
        )
        where = f"created_at in [{after or '-inf'}, {before or '+inf'})"
        if self.output_path is not None:
            return self._export(storage_path(self.output_path), sessions, where)
        result: list[dict[str, Any]] = []
        for session in sessions:
            if len(result) == self.max_xcom_sessions:
                raise AirflowFailException(
                    f"more than max_xcom_sessions={self.max_xcom_sessions} sessions match ({where}); XCom is "
                    "stored in Airflow's database, so write them to storage instead: set output_path (e.g. "
                    "'file:///data/devrev/{{ data_interval_start | ds }}.jsonl' or "
                    "'s3://bucket/devrev/{{ data_interval_start | ds }}.jsonl') and the XCom "
                    "holds the path and the count; or raise max_xcom_sessions"
                )
            result.append(session)
        metrics.incr("sessions_exported", len(result))
        self.log.info("Listed %d sessions (%s)", len(result), where)
        return result

    def _export(self, target: Any, sessions: Iterable[dict[str, Any]], where: str) -> dict[str, Any]:
        # A rerun after a sweep: the sessions the sweep found stay in their own file, and in no other.
        swept = late_files(target)
        if swept:
            sessions = without(sessions, session_ids(swept))
        if not self.allow_shrink:
            sessions = never_fewer(sessions, count_sessions(target), str(target))
        path, count = write_json_lines(target, sessions)
        metrics.incr("sessions_exported", count)
        self.log.info("Wrote %d sessions (%s) to %s", count, where, path)
        return {"path": path, "count": count}

    def _interval(self, context: Context) -> tuple[Any, Any]:
        after, before = self.created_after, self.created_before
        if not self.use_data_interval:
            return after, before
        start, end = context.get("data_interval_start"), context.get("data_interval_end")
        after = start if after is None else after
        before = end if before is None else before
        if after is None or before is None or _same_instant(after, before):
            raise AirflowFailException(
                f"the interval to list is empty ({after} to {before}), so it holds no sessions. Give the DAG a "
                "timetable with data intervals (e.g. CronDataIntervalTimetable('@daily', timezone='UTC'); "
                "Airflow 3's default for cron schedules has none), or pass created_after and created_before"
            )
        return after, before


def _same_instant(after: Any, before: Any) -> bool:
    # Rendered templates arrive as text; compared as instants, so "{{ data_interval_start }}" equal to
    # "{{ data_interval_end }}" (a zero-width interval) is caught however it was written.
    return to_utc(after, "created_after") == to_utc(before, "created_before")


def write_json_lines(output_path: Any, sessions: Iterable[dict[str, Any]]) -> tuple[str, int]:
    """
    Stream ``sessions`` to ``output_path`` as JSON Lines, published only once complete (see
    :func:`~airflow_provider_devrev._storage.published_atomically`); return the path written and how many lines.

    :param output_path: A path or URL, or an ``ObjectStoragePath``.
    """
    count = 0
    with published_atomically(output_path, "w", encoding="utf-8") as (stream, target):
        for session in sessions:
            stream.write(json_text(session) + "\n")
            count += 1
    return target, count
