"""
The answers of DevRev's observability API contract: a result object, or the typed error a status stands for.

Pure functions, no I/O (see :mod:`airflow_provider_devrev.contract`, which names everything here).
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from airflow_provider_devrev._api_requests import ApiRequest
from airflow_provider_devrev.exceptions import (
    DevRevAuthError,
    DevRevError,
    DevRevServerError,
    DevRevUnexpectedResponseError,
    body_excerpt,
    error_class_for_status,
)

#: Error bodies up to this size are parsed once per distinct body (see ``_error_body``).
MAX_CACHED_ERROR_BODY = 1024


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
    body = _error_body(content)
    retry_after = parse_retry_after(headers.get("Retry-After"), body, now=now)
    if body is None or not isinstance(body.get("type"), str):
        # Not DevRev's error shape: typically an HTML page from a proxy or load balancer. A 401 stays an auth
        # error whoever wrote its body (a gateway checking the token first): the hook re-reads the connection
        # on DevRevAuthError, and a rotated token is as likely behind a gateway's 401 as behind DevRev's.
        unexpected: type[DevRevError] = DevRevAuthError if status_code == 401 else DevRevUnexpectedResponseError
        return unexpected(
            f"{request.describe()} answered {status_code} with a body that is not a DevRev error: "
            f"{body_excerpt(_text(content)) or '(empty body)'}",
            status_code=status_code,
            retry_after=retry_after,
        )
    error_class = error_class_for_status(status_code)
    return error_class(
        _str_or_none(body.get("message")) or _default_message(status_code),
        body=body,
        status_code=status_code,
        error_type=body["type"],
        detail=_str_or_none(body.get("detail")),
        retry_after=retry_after,
        reference_id=_str_or_none(body.get("reference_id")),
        max_bytes=body["max_bytes"] if isinstance(body.get("max_bytes"), int) else None,
    )


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


#: What each kind of timeout says after "timed out", by the hop where the request stalled; the same words in
#: both transports. ``{t}`` is the timeout that ran out.
TIMEOUT_WORDS = {
    # A pooled connection, the TCP handshake, a proxy's answer to CONNECT, the TLS handshake: whichever
    # stalled, the request never got as far as being sent.
    "connect": "timed out while connecting: not connected within the {t} s connect timeout (TCP, a proxy's "
    "answer to CONNECT, the TLS handshake, or a free pooled connection)",
    "answer": "timed out waiting for the answer: no response within the {t} s read timeout",
    "body": "timed out reading the body: nothing more arrived within the {t} s read timeout",
    "request": "did not complete within the {t} s request_timeout (which bounds a whole request, body included)",
}


def no_response_error(
    request: ApiRequest, base_url: str, *, timeout: float, timeout_kind: str = "answer", proxy: str | None = None
) -> DevRevServerError:
    """
    The error for a call that got no answer in time. (A network failure is worded by
    :mod:`airflow_provider_devrev._failures`.)

    Transient by definition (see :mod:`airflow_provider_devrev.policy`), so it is retried like a 503.

    :param timeout: The seconds that ran out.
    :param timeout_kind: Where the request stalled (a key of :data:`TIMEOUT_WORDS`): ``connect``, ``answer``
        (no headers), ``body`` (the body stopped) or ``request`` (the whole request outlasted
        ``request_timeout``).
    :param proxy: The proxy the request went through, as messages show it (never its password): named for a
        connect timeout, where a proxy that never answers ``CONNECT`` is the likely cause.
    """
    words = TIMEOUT_WORDS[timeout_kind].format(t=f"{timeout:g}")
    via = f" through the proxy {proxy}" if proxy and timeout_kind == "connect" else ""
    return DevRevServerError(f"{request.describe()} to {base_url}{via} {words}", error_type="timeout", detail=words)


#: ``error_type`` of a request the HTTP library refused to build or send (:func:`unsendable_request_error`).
UNSENT = "invalid_request"


def unsendable_request_error(request: ApiRequest, base_url: str, failure: BaseException) -> DevRevError:
    """
    The error for a request the HTTP library refused to build or send (an invalid header, URL or body).

    Final: the same request would be refused again, so it is never retried, and it is not a network failure.
    It names the library's error class only: its text may quote a header, and so the token.
    """
    return DevRevError(
        f"{request.describe()} to {base_url} could not be sent: the HTTP library refused the request "
        f"({type(failure).__name__}: an invalid header, URL or body); check the connection's host and extras",
        error_type=UNSENT,
    )
