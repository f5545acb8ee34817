"""
DevRev's observability API contract, as pure functions: no I/O, no Airflow, no HTTP library.

The sync hook and the async trigger both build their requests and read their responses here, so they cannot
disagree about what a parameter must look like or what a status code means. The contract itself is
``airflow_provider_devrev/testing/contract/openapi.yaml`` (shipped in the package); the tests check this module
and the simulator against it.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from types import MappingProxyType
from typing import Any, TypeVar, cast
from urllib.parse import quote

from airflow_provider_devrev.exceptions import (
    DevRevError,
    DevRevInvalidInputError,
    DevRevServerError,
    DevRevUnexpectedResponseError,
    body_excerpt,
    error_class_for_status,
)

T = TypeVar("T")

DEFAULT_BASE_URL = "https://api.devrev.ai"
PLATFORMS: tuple[str, ...] = ("android", "ios", "web")

SESSIONS_GET_PATH = "/observability.sessions.get"
DEV_USERS_SELF_PATH = "/dev-users.self"
SESSIONS_DATA_GET_PATH = "/observability.sessions.data.get"
DEVELOPER_INFO_GET_PATH = "/observability.sessions.developer-info.get"
#: Longest path-and-query sent as a GET; many proxies and load balancers refuse URLs over 8 KiB.
MAX_GET_URL_CHARS = 4096
#: Error bodies up to this size are parsed once per distinct body (see ``_error_body``).
MAX_CACHED_ERROR_BODY = 1024


def validate_platform(value: Any, field_name: str = "platform") -> str:
    """Return ``value`` if it is exactly one of DevRev's platforms, else raise naming the allowed ones."""
    if not isinstance(value, str) or value not in PLATFORMS:
        raise DevRevInvalidInputError(field_name, value, f"must be one of {', '.join(PLATFORMS)}")
    return value


def validate_text(value: Any, field_name: str) -> str:
    """
    Return ``value`` if it is a usable identifier string, else raise naming the field.

    DevRev requires length >= 1; a string of only whitespace, or one that starts or ends with whitespace, is
    accepted by the API but is always a DAG bug (an empty template rendered with a newline, an id copied
    with its trailing space), so it is refused too, shown with ``repr`` so the space is visible. Any other
    character, inner spaces included, is legal and is sent exactly as given.
    """
    if not isinstance(value, str):
        raise DevRevInvalidInputError(field_name, value, f"must be a string, not {type(value).__name__}")
    if not value.strip():
        raise DevRevInvalidInputError(field_name, value, "must be a non-empty string")
    if value != value.strip():
        # Copied from a spreadsheet or a log line with its space: DevRev would answer 404 until the timeout.
        raise DevRevInvalidInputError(field_name, value, "must not start or end with whitespace")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise DevRevInvalidInputError(field_name, value, "must be valid Unicode text") from None
    return value


@dataclass(frozen=True)
class ApiRequest:
    """
    One DevRev call, independent of the transport that will send it.

    :param method: ``GET`` or ``POST``.
    :param path: The dotted operation path, e.g. ``/observability.sessions.get``.
    :param query: Query parameters, already validated, in the order they are sent.
    :param body: JSON body for ``POST``.
    :param result_key: The key of the 200 body that holds the result (``session``, ``dev_user``, ...); empty
        for the whole body.
    """

    method: str
    path: str
    query: tuple[tuple[str, str], ...] = ()
    body: Mapping[str, Any] | None = field(default=None)
    result_key: str = ""

    def url(self, base_url: str) -> str:
        """The full URL, percent-encoded once, here, so both transports send byte-identical requests."""
        # A trigger sends the same request at every poll, thousands of waits at a time: percent-encoding
        # the query again each time was a tenth of the transport's CPU. The last URL is kept with the
        # request (a rotated host simply encodes it again).
        memo = self.__dict__.get("_url_memo")
        if memo is not None and memo[0] == base_url:
            return cast(str, memo[1])
        url = base_url.rstrip("/") + self._path_and_query()
        object.__setattr__(self, "_url_memo", (base_url, url))
        return url

    def _path_and_query(self) -> str:
        # Independent of the host, so it is encoded once even when the URL is asked for with two bases
        # (the length check of get_session_request, then the transport) or after a rotated host.
        encoded = self.__dict__.get("_path_and_query_memo")
        if encoded is None:
            encoded = self.path
            if self.query:
                encoded += "?" + "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in self.query)
            object.__setattr__(self, "_path_and_query_memo", encoded)
        return cast(str, encoded)

    def url_as(self, base_url: str, build: Callable[[str], T]) -> T:
        """
        ``build(self.url(base_url))``, kept with the request like the URL itself: a transport's own form
        of the URL (aiohttp's ``yarl.URL``) is built once per request, not at every poll.

        :param build: A pure function of the URL text, the same object at every call.
        """
        memo = self.__dict__.get("_url_as_memo")
        if memo is not None and memo[0] == base_url and memo[1] is build:
            return cast(T, memo[2])
        value = build(self.url(base_url))
        object.__setattr__(self, "_url_as_memo", (base_url, build, value))
        return value

    def describe(self) -> str:
        """``METHOD /path``: what logs and errors name, never the query (it may hold user ids)."""
        return f"{self.method} {self.path}"


def get_session_request(platform: Any, session_id: Any, version_key: Any) -> ApiRequest:
    """
    Validate the arguments of ``observability.sessions.get`` and describe the request.

    GET, as DevRev documents it first; but ids whose query would make a URL longer than proxies commonly
    accept go in the contract's equivalent POST form (same fields as a JSON body), so any id of any
    length reaches DevRev exactly as given.
    """
    query = (
        ("platform", validate_platform(platform)),
        ("session_id", validate_text(session_id, "session_id")),
        ("version_key", validate_text(version_key, "version_key")),
    )
    get = ApiRequest("GET", SESSIONS_GET_PATH, query=query, result_key="session")
    if len(get.url("")) <= MAX_GET_URL_CHARS:
        return get
    return ApiRequest("POST", SESSIONS_GET_PATH, body=dict(query), result_key="session")


def dev_users_self_request() -> ApiRequest:
    """The cheapest authenticated call; used to test a connection."""
    return ApiRequest("GET", DEV_USERS_SELF_PATH, result_key="dev_user")


def get_session_recording_request(
    session_id: Any, version_key: Any, *, recording_id: Any = None, tab_id: Any = None
) -> ApiRequest:
    """
    Validate the arguments of ``observability.sessions.data.get`` and describe the request.

    A session's recording is named by exactly one of ``recording_id`` (a mobile session's, one of its
    ``recording_ids``) or ``tab_id`` (a web session's, one of its ``tab_ids``): DevRev cannot tell which one is
    meant otherwise. The answer is the whole body, a union on its ``recording`` field. GET, or the contract's
    equivalent POST form for ids too long for a URL.
    """
    given = {name: value for name, value in (("recording_id", recording_id), ("tab_id", tab_id)) if value is not None}
    if len(given) != 1:
        field_name, value = ("recording_id", recording_id) if not given else ("tab_id", tab_id)
        raise DevRevInvalidInputError(
            field_name,
            value,
            "give exactly one of recording_id (a mobile session's, one of its recording_ids) or tab_id (a web "
            f"session's, one of its tab_ids); got {'neither' if not given else 'both'}",
        )
    query = (
        ("session_id", validate_text(session_id, "session_id")),
        ("version_key", validate_text(version_key, "version_key")),
        *((name, validate_text(value, name)) for name, value in given.items()),
    )
    get = ApiRequest("GET", SESSIONS_DATA_GET_PATH, query=query)
    if len(get.url("")) <= MAX_GET_URL_CHARS:
        return get
    return ApiRequest("POST", SESSIONS_DATA_GET_PATH, body=dict(query))


def get_session_developer_info_request(session_id: Any, version_key: Any, tab_id: Any) -> ApiRequest:
    """
    Validate the arguments of ``observability.sessions.developer-info.get`` (a web session's console and
    network data) and describe the request: POST only, as the contract defines no GET form.
    """
    body = {
        "session_id": validate_text(session_id, "session_id"),
        "version_key": validate_text(version_key, "version_key"),
        "tab_id": validate_text(tab_id, "tab_id"),
    }
    return ApiRequest("POST", DEVELOPER_INFO_GET_PATH, body=body)


def recording_kind(request: ApiRequest, recording: Mapping[str, Any]) -> str:
    """
    The ``recording`` discriminator of a ``sessions.data.get`` answer (``mobile_recording``, ``web_recording``,
    or a kind DevRev adds later, kept as it comes); a 200 without one is not the contract's answer.
    """
    kind = recording.get("recording")
    if not isinstance(kind, str) or not kind:
        raise DevRevUnexpectedResponseError(
            f"{request.describe()} answered 200 without a 'recording' kind (its value: {body_excerpt(repr(kind))})",
            status_code=200,
        )
    return kind


def parse_response(
    request: ApiRequest,
    status_code: int,
    headers: Mapping[str, str],
    content: bytes,
    *,
    now: datetime | None = None,
) -> dict[str, Any]:
    """
    Turn one HTTP answer into the result object, or raise the typed error it stands for.

    :param request: What was sent; its ``result_key`` names the object a 200 must hold.
    :param status_code: The HTTP status.
    :param headers: Response headers (case-insensitive mapping, as both HTTP libraries give).
    :param content: The raw body.
    :param now: The current time, for ``Retry-After`` given as an HTTP date (tests pass a fixed one).
    :return: The object under ``result_key``, exactly as DevRev sent it.
    """
    if 200 <= status_code < 300:
        payload = _json_object(content)
        # An empty result_key asks for the whole body (a list page: sessions and cursors side by side).
        result = payload.get(request.result_key) if payload is not None and request.result_key else payload
        if not isinstance(result, dict):
            raise DevRevUnexpectedResponseError(
                f"{request.describe()} answered {status_code} without a {request.result_key or 'JSON'!r} object: "
                f"{body_excerpt(_text(content)) or '(empty body)'}",
                status_code=status_code,
            )
        return result
    raise error_from_response(request, status_code, headers, content, now=now)


def error_from_response(
    request: ApiRequest,
    status_code: int,
    headers: Mapping[str, str],
    content: bytes,
    *,
    now: datetime | None = None,
) -> DevRevError:
    """Build the typed error for a non-2xx answer, from DevRev's error body when it sent one."""
    retry_header = headers.get("Retry-After")
    if retry_header is None and len(content) <= MAX_CACHED_ERROR_BODY:
        # A wait meets the same small 404 at every poll. With no header to read, what the error is made of
        # depends on the status and the body alone: worked out once per distinct answer.
        parts = _cached_devrev_error(status_code, content)
        if parts is not None:
            error_class, message, fields, body = parts
            return error_class(message, body=dict(body), **fields)
    body = _error_body(content)
    retry_after = parse_retry_after(retry_header, body, now=now)
    if body is None or not isinstance(body.get("type"), str):
        # Not DevRev's error shape: typically an HTML page from a proxy or load balancer.
        return DevRevUnexpectedResponseError(
            f"{request.describe()} answered {status_code} with a body that is not a DevRev error: "
            f"{body_excerpt(_text(content)) or '(empty body)'}",
            status_code=status_code,
            retry_after=retry_after,
        )
    error_class, message, fields = _devrev_error(status_code, body, retry_after)
    return error_class(message, body=body, **fields)


#: What a typed error is built from: its class, message and keyword fields (all but ``body``).
_ErrorParts = tuple[type[DevRevError], str, dict[str, Any]]


def _devrev_error(status_code: int, body: dict[str, Any], retry_after: float | None) -> _ErrorParts:
    # ``body`` is DevRev's error shape (its ``type`` is a string).
    return (
        error_class_for_status(status_code),
        _str_or_none(body.get("message")) or _default_message(status_code),
        {
            "status_code": status_code,
            "error_type": body["type"],
            "detail": _str_or_none(body.get("detail")),
            "retry_after": retry_after,
            "reference_id": _str_or_none(body.get("reference_id")),
            "max_bytes": body["max_bytes"] if isinstance(body.get("max_bytes"), int) else None,
        },
    )


@functools.lru_cache(maxsize=256)
def _cached_devrev_error(status_code: int, content: bytes) -> tuple[type[DevRevError], str, Any, Any] | None:
    # Read-only views, so no caller can change what the next error is built from; each error gets its own
    # copy of the body (see error_from_response).
    body = _cached_error_body(content)
    if body is None or not isinstance(body.get("type"), str):
        return None
    error_class, message, fields = _devrev_error(status_code, body, parse_retry_after(None, body))
    return error_class, message, MappingProxyType(fields), MappingProxyType(body)


def parse_retry_after(
    header: str | None, body: Mapping[str, Any] | None, *, now: datetime | None = None
) -> float | None:
    """
    Seconds DevRev asked us to wait: the ``Retry-After`` header (seconds or an HTTP date), else the body's
    ``retry_after``. Garbage, negative or non-finite values are ignored; a date in the past means 0.
    """
    if header is not None:
        seconds = _retry_after_header_seconds(header.strip(), now)
        if seconds is not None:
            return seconds
    if body is not None:
        value = body.get("retry_after")
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
        if math.isfinite(value) and value >= 0:
            return float(value)
    return None


def _retry_after_header_seconds(header: str, now: datetime | None) -> float | None:
    try:
        seconds = float(header)
    except ValueError:
        pass
    else:
        return seconds if math.isfinite(seconds) and seconds >= 0 else None
    try:
        when = parsedate_to_datetime(header)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    delta = (when - (now or datetime.now(UTC))).total_seconds()
    return max(0.0, delta)


def _json_object(content: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(content)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def _error_body(content: bytes) -> dict[str, Any] | None:
    # A wait polls the same session until it is uploaded, and every poll meets the same few-dozen-byte 404
    # body: parse each distinct small body once. Each error gets its own copy.
    if len(content) > MAX_CACHED_ERROR_BODY:
        return _json_object(content)
    body = _cached_error_body(content)
    return dict(body) if body is not None else None


@functools.lru_cache(maxsize=256)
def _cached_error_body(content: bytes) -> dict[str, Any] | None:
    return _json_object(content)


def _text(content: bytes) -> str:
    return content.decode("utf-8", errors="replace")


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _default_message(status_code: int) -> str:
    return {
        400: "the request was rejected",
        401: "the API token was not accepted",
        403: "the API token may not do this",
        404: "not found",
        413: "the request is too large",
        429: "rate limit exceeded",
    }.get(status_code, "the server failed")


def no_response_error(
    request: ApiRequest, base_url: str, *, timeout: float | None = None, timeout_kind: str = "read"
) -> DevRevServerError:
    """
    The error for a call that got no answer: a timeout when ``timeout`` is given, else a connection error.

    Transient by definition (see :mod:`airflow_provider_devrev.policy`), so it is retried like a 503.
    """
    if timeout is not None:
        return DevRevServerError(
            f"{request.describe()} to {base_url} got no answer within the {timeout:g} s {timeout_kind} timeout",
            error_type="timeout",
        )
    return DevRevServerError(
        f"{request.describe()} to {base_url} failed: connection refused, reset or closed before an answer",
        error_type="connection_error",
    )


def unsendable_request_error(request: ApiRequest, base_url: str, failure: BaseException) -> DevRevError:
    """
    The error for a request the HTTP library refused to build or send (an invalid header, URL or body).

    Final: the same request would be refused again, so it is never retried, and it is not a network failure.
    It names the library's error class only: its text may quote a header, and so the token.
    """
    return DevRevError(
        f"{request.describe()} to {base_url} could not be sent: the HTTP library refused the request "
        f"({type(failure).__name__}: an invalid header, URL or body); check the connection's host and extras",
        error_type="invalid_request",
    )


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
