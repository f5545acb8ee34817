"""Fetch one DevRev session and hand it to downstream tasks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow_provider_devrev._arguments import SessionArgumentsMixin
from airflow_provider_devrev._compat import BaseOperator
from airflow_provider_devrev.connection import HookOptions
from airflow_provider_devrev.contract import summarize_session

if TYPE_CHECKING:
    from airflow_provider_devrev._compat import Context


class GetSessionOperator(SessionArgumentsMixin, BaseOperator):
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
        session = self.hook.get_session(self.platform, self.session_id, self.version_key)
        self.log.info("Fetched %s", summarize_session(session))
        return session
