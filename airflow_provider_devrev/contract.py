"""
DevRev's observability API contract, as pure functions: no I/O, no Airflow, no HTTP library.

The sync hook and the async trigger both build their requests and read their responses here, so they cannot
disagree about what a parameter must look like or what a status code means. The contract itself is
``airflow_provider_devrev/testing/contract/openapi.yaml`` (shipped in the package); the tests check this module
and the simulator against it.

What a request is lives in ``_api_requests``, what an answer means in ``_api_answers``; the package and its
users import both from here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airflow_provider_devrev._api_answers import (
    MAX_CACHED_ERROR_BODY,
    error_from_response,
    no_response_error,
    parse_response,
    parse_retry_after,
    recording_kind,
    unsendable_request_error,
)
from airflow_provider_devrev._api_requests import (
    DEFAULT_BASE_URL,
    DEV_USERS_SELF_PATH,
    DEVELOPER_INFO_GET_PATH,
    MAX_GET_URL_CHARS,
    PLATFORMS,
    SESSIONS_DATA_GET_PATH,
    SESSIONS_GET_PATH,
    ApiRequest,
    dev_users_self_request,
    get_session_developer_info_request,
    get_session_recording_request,
    get_session_request,
    validate_platform,
    validate_text,
)

__all__ = [
    "DEFAULT_BASE_URL",
    "DEVELOPER_INFO_GET_PATH",
    "DEV_USERS_SELF_PATH",
    "MAX_CACHED_ERROR_BODY",
    "MAX_GET_URL_CHARS",
    "PLATFORMS",
    "SESSIONS_DATA_GET_PATH",
    "SESSIONS_GET_PATH",
    "ApiRequest",
    "dev_users_self_request",
    "error_from_response",
    "get_session_developer_info_request",
    "get_session_recording_request",
    "get_session_request",
    "no_response_error",
    "parse_response",
    "parse_retry_after",
    "recording_kind",
    "summarize_session",
    "unsendable_request_error",
    "validate_platform",
    "validate_text",
]


def summarize_session(session: Mapping[str, Any]) -> str:
    """
    One log line about a session: what a DAG author wants to see, never the whole body.

    Mobile sessions show crash / ANR / rage tap, web sessions their click counts.
    """
    parts = [
        f"session {session.get('session_id')!s}",
        f"type={session.get('type')!s}",
        f"platform={session.get('platform')!s}",
        f"created_at={session.get('created_at')!s}",
    ]
    if session.get("type") == "web":
        parts += [
            f"rage_clicks={session.get('rage_click_count')}",
            f"dead_clicks={session.get('dead_click_count')}",
        ]
    else:
        parts += [
            f"crash={session.get('is_crash')}",
            f"anr={session.get('is_anr')}",
            f"rage_tap={session.get('rage_tap')}",
        ]
    return ", ".join(parts)
