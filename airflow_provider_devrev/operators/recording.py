"""Fetch a session's recording (crash log, timeline, console and network activity) for a triage task."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow_provider_devrev._arguments import known_at_parse_time
from airflow_provider_devrev._compat import AirflowFailException, BaseOperator
from airflow_provider_devrev._storage import published_atomically
from airflow_provider_devrev.connection import HookOptions
from airflow_provider_devrev.contract import get_session_recording_request, validate_platform, validate_text
from airflow_provider_devrev.exceptions import DevRevInvalidInputError
from airflow_provider_devrev.lineage import OpenLineageMixin
from airflow_provider_devrev.links import DevRevSessionLink, keep_session_url

if TYPE_CHECKING:
    from airflow_provider_devrev._compat import Context

#: The largest answer an operator returns as XCom: XCom lives in Airflow's metadata database.
DEFAULT_MAX_XCOM_BYTES = 1_000_000


def validate_max_xcom_bytes(value: Any) -> int:
    """``max_xcom_bytes`` if it is a positive int, else a clear error naming it."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise DevRevInvalidInputError("max_xcom_bytes", value, "must be an int >= 1")
    return value


def xcom_too_large(what: str, size: str, max_xcom_bytes: int, example: str) -> AirflowFailException:
    """The failure for an answer above ``max_xcom_bytes``: final (a retry gets the same answer), saying what to do."""
    return AirflowFailException(
        f"{what} is larger than max_xcom_bytes={max_xcom_bytes} ({size}); XCom is stored in Airflow's database, "
        f"so write it to storage instead: set output_path (e.g. {example!r} or an s3:// or gs:// URL) and the "
        "XCom holds where it went and its size; or raise max_xcom_bytes"
    )


class _TooLargeForXCom(Exception):
    """Raised from the writer to stop reading a recording that XCom cannot hold."""


class GetSessionRecordingOperator(OpenLineageMixin, BaseOperator):
    """
    Fetch one recording of a session (``observability.sessions.data.get``): a mobile session's by
    ``recording_id`` (one of its ``recording_ids``), a web session's by ``tab_id`` (one of its ``tab_ids``).

    The recording is what a triage needs beyond the session object: for mobile the crash or ANR log
    (``observability_sessions_log_data.value``), the timeline of taps, screens and API calls
    (``recording_events_timeline``), app launch and RAM; for web the timeline (``timeline_data.events``),
    console and network counts, page timings and replay data. It is kept exactly as DevRev sent it.

    Where it goes:

    - without ``output_path`` the recording itself is the ``return_value`` XCom. XCom lives in Airflow's
      database, so a recording larger than ``max_xcom_bytes`` fails the task, before anything is pushed and
      as soon as the limit is passed (the rest is not downloaded), saying to set ``output_path``.
    - with ``output_path`` (a local path, ``file://...``, or any URL Airflow's ``ObjectStoragePath`` accepts,
      e.g. ``s3://aws_default@bucket/devrev/{{ data_interval_start | ds }}/{{ params.session_id }}.json``) the
      body is streamed there as it arrives, never held whole in memory, and published only once complete and
      checked to be whole JSON: written beside the target and moved into place, so readers never see half a
      recording and a failed run leaves none. A rerun overwrites it. The XCom is ``{"path", "bytes", "recording"}`` (the
      recording's kind: ``mobile_recording`` or ``web_recording``).

    Works with dynamic task mapping over a session's recordings:
    ``GetSessionRecordingOperator.partial(...).expand(recording_id=session["recording_ids"])``.

    A 404 (unknown session, recording or tab) fails the task with ``DevRevNotFoundError``. A body cut off
    mid-stream fails it with ``DevRevUnexpectedResponseError``; failures before the first byte are retried
    as ``GetSessionOperator`` retries them.

    :param session_id: The session's id. Templated.
    :param version_key: The app version key the session was recorded under. Templated.
    :param recording_id: The mobile recording to fetch (exactly one of this and ``tab_id``). Templated.
    :param tab_id: The web tab to fetch (exactly one of this and ``recording_id``). Templated.
    :param output_path: Where to write the recording's JSON; ``None`` returns it as the XCom. Templated.
    :param max_xcom_bytes: The largest recording returned as XCom, in bytes of JSON (default 1,000,000).
    :param devrev_conn_id: The DevRev connection. Templated.
    :param timeout: Seconds to wait for each read (overrides the connection's ``timeout``).
    :param max_retries: Retries of a 429, 5xx, connection error or timeout (overrides the connection's).
    :param max_retry_wait: Longest ``Retry-After`` waited out; a longer one fails the task at once.
    :param platform: ``android``, ``ios`` or ``web``, for the "DevRev session" link only (the request does not
        need it): ``web`` with ``tab_id``; a mobile recording has a link from a template using ``{platform}``
        only if it is given. Templated.
    """

    template_fields: Sequence[str] = (
        "session_id",
        "version_key",
        "recording_id",
        "tab_id",
        "output_path",
        "devrev_conn_id",
        "platform",
    )
    ui_color = "#e6f0ff"
    operator_extra_links = (DevRevSessionLink(),)

    def __init__(
        self,
        *,
        session_id: str,
        version_key: str,
        recording_id: str | None = None,
        tab_id: str | None = None,
        output_path: Any = None,
        max_xcom_bytes: int = DEFAULT_MAX_XCOM_BYTES,
        devrev_conn_id: str = "devrev_default",
        timeout: float | None = None,
        max_retries: int | None = None,
        max_retry_wait: float | None = None,
        platform: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        arguments = {"session_id": session_id, "version_key": version_key, "recording_id": recording_id}
        arguments["tab_id"] = tab_id
        if all(known_at_parse_time(value) for value in arguments.values()):
            # Every argument is final now: a bad one should fail the DAG import, naming the field.
            get_session_recording_request(session_id, version_key, recording_id=recording_id, tab_id=tab_id)
        else:
            for name in ("session_id", "version_key"):
                if known_at_parse_time(arguments[name]):
                    validate_text(arguments[name], name)
        if platform is not None and known_at_parse_time(platform):
            validate_platform(platform)
        # Optional here alone (only the link needs it; _lineage_platform covers None), where the lineage mixin's
        # other operators require it.
        self.platform = platform  # type: ignore[assignment]
        self.session_id = session_id
        self.version_key = version_key
        self.recording_id = recording_id
        self.tab_id = tab_id
        self.output_path = output_path
        self.max_xcom_bytes = validate_max_xcom_bytes(max_xcom_bytes)
        self.devrev_conn_id = devrev_conn_id
        self.hook_options = HookOptions(timeout=timeout, max_retries=max_retries, max_retry_wait=max_retry_wait)

    def _lineage_platform(self) -> str:
        # DevRev names a recording by session and version key alone: a tab is a web session's, a recording id an
        # Android or iOS session's, and which of the two is nowhere in the request or the answer unless the DAG
        # gave `platform` (for the link).
        if self.platform is not None:
            return self.platform
        return "web" if self.tab_id is not None else "mobile"

    def execute(self, context: Context) -> dict[str, Any]:
        try:
            return self._fetch()
        finally:  # a failed fetch keeps its link too: it is where a user goes to see why
            platform = self.platform or ("web" if self.tab_id is not None else None)
            settings = self.hook.settings_read
            keep_session_url(
                self, context, settings, platform=platform, session_id=self.session_id, version_key=self.version_key
            )

    def _fetch(self) -> dict[str, Any]:
        which = f"recording {self.recording_id}" if self.recording_id is not None else f"tab {self.tab_id}"
        ids = {"recording_id": self.recording_id, "tab_id": self.tab_id}
        if self.output_path is not None:
            with published_atomically(self.output_path, "wb") as (stream, target):
                streamed = self.hook.stream_session_recording(self.session_id, self.version_key, stream.write, **ids)
            self.log.info(
                "Wrote %s of session %s (%s, %d bytes) to %s",
                which,
                self.session_id,
                streamed.recording,
                streamed.bytes,
                target,
            )
            return {"path": target, "bytes": streamed.bytes, "recording": streamed.recording}
        body = bytearray()
        received = [0]

        def keep(chunk: bytes) -> None:
            received[0] += len(chunk)
            if received[0] > self.max_xcom_bytes:
                raise _TooLargeForXCom
            body.extend(chunk)

        try:
            streamed = self.hook.stream_session_recording(self.session_id, self.version_key, keep, **ids)
        except _TooLargeForXCom:
            raise xcom_too_large(
                f"{which} of session {self.session_id}",
                f"{received[0]} bytes had arrived when it was stopped, the rest was not downloaded",
                self.max_xcom_bytes,
                "file:///data/devrev/{{ data_interval_start | ds }}/{{ run_id }}-{{ ti.map_index }}.json",
            ) from None
        recording: dict[str, Any] = json.loads(body)
        self.log.info("Fetched %s of session %s (%r, %d bytes)", which, self.session_id, streamed.recording, len(body))
        return recording
