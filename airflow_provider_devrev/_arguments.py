"""What the operators and the sensor share: their arguments, checked as early as they are known, and the lazy hook."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow_provider_devrev.contract import validate_platform, validate_text
from airflow_provider_devrev.listing import session_type_for, validate_filters

if TYPE_CHECKING:
    from airflow_provider_devrev.connection import HookOptions
    from airflow_provider_devrev.hooks.devrev import DevRevHook


def known_at_parse_time(value: Any) -> bool:
    """Whether ``value`` is final when the DAG file is parsed (not a Jinja template, not an ``XComArg``)."""
    # A Jinja template or an XComArg is only known after rendering, where the hook validates it again.
    # Anything else (a plain string, None, a number) is final now, so a bad one should fail the DAG import.
    if isinstance(value, str):
        return "{{" not in value and "{%" not in value
    return value is None or isinstance(value, int | float | bytes)


def _has_template(value: Any) -> bool:
    if isinstance(value, dict):
        return any(_has_template(item) for item in value.values())
    if isinstance(value, list | tuple):
        return any(_has_template(item) for item in value)
    return not isinstance(value, bool) and not known_at_parse_time(value)


def _validate_app(platform: Any, version_key: Any) -> None:
    if known_at_parse_time(platform):
        validate_platform(platform)
    if known_at_parse_time(version_key):
        validate_text(version_key, "version_key")


def validate_session_arguments(platform: Any, session_id: Any, version_key: Any) -> None:
    """Raise ``DevRevInvalidInputError`` (a ``ValueError``) for a literal argument DevRev would refuse."""
    _validate_app(platform, version_key)
    if known_at_parse_time(session_id):
        validate_text(session_id, "session_id")


def validate_listing_arguments(platform: Any, version_key: Any, filters: Any) -> None:
    """The same for a listing; filters are checked against the platform's filter set once both are known."""
    _validate_app(platform, version_key)
    if known_at_parse_time(platform) and filters is not None and not _has_template(filters):
        validate_filters(filters, session_type_for(platform))


class LazyHookMixin:
    """The hook of a task with ``devrev_conn_id`` and ``hook_options``, built when the task first runs."""

    devrev_conn_id: str
    hook_options: HookOptions

    @cached_property
    def hook(self) -> DevRevHook:
        """Built on first use, at run time: nothing is looked up while the DAG file is parsed."""
        from airflow_provider_devrev.hooks.devrev import DevRevHook

        return DevRevHook(self.devrev_conn_id, **self.hook_options.as_kwargs())


class SessionArgumentsMixin(LazyHookMixin):
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

    def session_values(self) -> dict[str, str]:
        """The rendered ``platform``, ``session_id`` and ``version_key``, e.g. for the "DevRev session" link."""
        return {"platform": self.platform, "session_id": self.session_id, "version_key": self.version_key}
