"""What GetSessionOperator and DevRevSessionSensor share: their session arguments, checked early, and the hook."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow_provider_devrev.contract import validate_platform, validate_text

if TYPE_CHECKING:
    from airflow_provider_devrev.connection import HookOptions
    from airflow_provider_devrev.hooks.devrev import DevRevHook


def _known_at_parse_time(value: Any) -> bool:
    # A Jinja template or an XComArg is only known after rendering, where the hook validates it again.
    # Anything else (a plain string, None, a number) is final now, so a bad one should fail the DAG import.
    if isinstance(value, str):
        return "{{" not in value and "{%" not in value
    return value is None or isinstance(value, int | float | bytes)


def validate_session_arguments(platform: Any, session_id: Any, version_key: Any) -> None:
    """Raise ``DevRevInvalidInputError`` (a ``ValueError``) for a literal argument DevRev would refuse."""
    if _known_at_parse_time(platform):
        validate_platform(platform)
    if _known_at_parse_time(session_id):
        validate_text(session_id, "session_id")
    if _known_at_parse_time(version_key):
        validate_text(version_key, "version_key")


class SessionArgumentsMixin:
    """The session a task is about, and the hook that fetches it; mixed into an operator or a sensor."""

    #: The operator's and the sensor's ``template_fields``: the arguments this mixin sets.
    SESSION_TEMPLATE_FIELDS: tuple[str, ...] = ("platform", "session_id", "version_key", "devrev_conn_id")

    def _set_session_arguments(
        self, *, platform: Any, session_id: Any, version_key: Any, devrev_conn_id: str, hook_options: HookOptions
    ) -> None:
        validate_session_arguments(platform, session_id, version_key)
        self.platform = platform
        self.session_id = session_id
        self.version_key = version_key
        self.devrev_conn_id = devrev_conn_id
        self.hook_options = hook_options

    @cached_property
    def hook(self) -> DevRevHook:
        """Built on first use, at run time: nothing is looked up while the DAG file is parsed."""
        from airflow_provider_devrev.hooks.devrev import DevRevHook

        return DevRevHook(self.devrev_conn_id, **self.hook_options.as_kwargs())
