"""Checks of operator and sensor arguments that can run at DAG-parse time."""

from __future__ import annotations

from typing import Any

from airflow_provider_devrev.contract import validate_platform, validate_text


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
