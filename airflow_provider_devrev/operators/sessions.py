"""Fetch many DevRev sessions by id in one task: the bulk path, with get_sessions' concurrency and 429 pacing."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from airflow_provider_devrev._arguments import known_at_parse_time, validate_listing_arguments
from airflow_provider_devrev._compat import BaseOperator
from airflow_provider_devrev._json_text import json_text
from airflow_provider_devrev._storage import published_atomically
from airflow_provider_devrev._values import validate_max_concurrency
from airflow_provider_devrev.connection import HookOptions
from airflow_provider_devrev.contract import validate_text
from airflow_provider_devrev.exceptions import DevRevInvalidInputError
from airflow_provider_devrev.lineage import OpenLineageMixin
from airflow_provider_devrev.operators.recording import (
    DEFAULT_MAX_XCOM_BYTES,
    validate_max_xcom_bytes,
    xcom_too_large,
)

if TYPE_CHECKING:
    from airflow_provider_devrev._compat import Context


class GetSessionsOperator(OpenLineageMixin, BaseOperator):
    """
    Fetch many sessions by id in one task, concurrently, through
    :meth:`~airflow_provider_devrev.hooks.devrev.DevRevHook.get_sessions`: at most ``max_concurrency``
    requests in flight, and a 429 slows the whole batch down together instead of failing it.

    The sessions come back in the order of ``session_ids``, each id once even if listed twice. A session DevRev
    does not have (404) fails the task with ``DevRevNotFoundError``, or is left out with ``skip_missing=True``.
    Where they go:

    - without ``output_path`` the list of sessions is the ``return_value`` XCom; a list whose JSON is larger
      than ``max_xcom_bytes`` fails the task before anything is pushed, saying to set ``output_path``.
    - with ``output_path`` (a local path, ``file://...``, or any ``ObjectStoragePath`` URL) they are written
      there as JSON Lines, one session per line in order, published only once complete (as
      ``ListSessionsOperator`` publishes), and the XCom is ``{"path", "bytes", "count"}``.

    :param platform: ``android``, ``ios`` or ``web``. Templated.
    :param version_key: The app version key. Templated.
    :param session_ids: The sessions' ids: a list, or an ``XComArg`` (another task's output). Templated.
    :param skip_missing: Leave out sessions DevRev does not have instead of failing.
    :param max_concurrency: Requests in flight at most (1 to 64, default 8).
    :param output_path: Where to write JSON Lines; ``None`` returns the sessions as the XCom. Templated.
    :param max_xcom_bytes: The largest list returned as XCom, in bytes of JSON (default 1,000,000).
    :param devrev_conn_id: The DevRev connection. Templated.
    :param timeout: Seconds to wait for each read (overrides the connection's ``timeout``).
    :param max_retries: Retries of a 5xx, connection error or timeout (overrides the connection's).
    :param max_retry_wait: Longest ``Retry-After`` waited out; a longer one fails the task at once.
    """

    template_fields: Sequence[str] = ("platform", "version_key", "session_ids", "output_path", "devrev_conn_id")
    ui_color = "#e6f0ff"

    def __init__(
        self,
        *,
        platform: str,
        version_key: str,
        session_ids: Any,
        skip_missing: bool = False,
        max_concurrency: int = 8,
        output_path: Any = None,
        max_xcom_bytes: int = DEFAULT_MAX_XCOM_BYTES,
        devrev_conn_id: str = "devrev_default",
        timeout: float | None = None,
        max_retries: int | None = None,
        max_retry_wait: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        validate_listing_arguments(platform, version_key, None)
        if isinstance(session_ids, list | tuple):
            for session_id in session_ids:
                if known_at_parse_time(session_id):
                    validate_text(session_id, "session_ids")
        elif isinstance(session_ids, str) and known_at_parse_time(session_ids):
            raise DevRevInvalidInputError("session_ids", session_ids, "must be a list of session ids")
        validate_max_concurrency(max_concurrency)
        self.platform = platform
        self.version_key = version_key
        self.session_ids = session_ids
        self.skip_missing = skip_missing
        self.max_concurrency = max_concurrency
        self.output_path = output_path
        self.max_xcom_bytes = validate_max_xcom_bytes(max_xcom_bytes)
        self.devrev_conn_id = devrev_conn_id
        self.hook_options = HookOptions(timeout=timeout, max_retries=max_retries, max_retry_wait=max_retry_wait)

    def execute(self, context: Context) -> list[dict[str, Any]] | dict[str, Any]:
        ids = self.session_ids
        if isinstance(ids, str) or not isinstance(ids, Iterable):
            # A template rendered to text, e.g. "{{ ti.xcom_pull(...) }}" without render_template_as_native_obj.
            raise DevRevInvalidInputError(
                "session_ids", ids, "must be a list of session ids (pass an XComArg, e.g. task.output, not a template)"
            )
        wanted = list(ids)
        sessions = self.hook.get_sessions(
            self.platform,
            self.version_key,
            wanted,
            max_concurrency=self.max_concurrency,
            skip_missing=self.skip_missing,
        )
        if self.output_path is not None:
            size = 0
            with published_atomically(self.output_path, "wb") as (stream, target):
                for session in sessions:
                    line = (json_text(session) + "\n").encode()
                    stream.write(line)
                    size += len(line)
            self.log.info("Wrote %d sessions (%d bytes) to %s", len(sessions), size, target)
            return {"path": target, "bytes": size, "count": len(sessions)}
        size = len(json_text(sessions).encode())
        if size > self.max_xcom_bytes:
            raise xcom_too_large(
                f"the list of {len(sessions)} sessions",
                f"{size} bytes of JSON",
                self.max_xcom_bytes,
                "file:///data/devrev/{{ data_interval_start | ds }}/{{ run_id }}-sessions.jsonl",
            )
        self.log.info("Fetched %d sessions (%d ids asked for)", len(sessions), len(wanted))
        return sessions
