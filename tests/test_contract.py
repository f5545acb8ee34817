"""The pure contract and policy functions: request building, response parsing, Retry-After, waits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from airflow_provider_devrev.contract import (
    ApiRequest,
    get_session_request,
    parse_response,
    parse_retry_after,
)
from airflow_provider_devrev.exceptions import (
    DevRevAuthError,
    DevRevError,
    DevRevRateLimitError,
    DevRevServerError,
    DevRevUnexpectedResponseError,
)
from airflow_provider_devrev.policy import RetryPolicy, SensorOutcome, is_transient, sensor_outcome

NOW = datetime(2026, 11, 26, 12, 0, 0, tzinfo=UTC)
REQ = ApiRequest("GET", "/observability.sessions.get", result_key="session")


def test_url_percent_encodes_every_reserved_character_once():
    request = get_session_request("web", "a b/c?d#e&f=g+h%i", "v 1")
    assert request.url("http://127.0.0.1:1/") == (
        "http://127.0.0.1:1/observability.sessions.get"
        "?platform=web&session_id=a%20b%2Fc%3Fd%23e%26f%3Dg%2Bh%25i&version_key=v%201"
    )


def test_a_kept_url_follows_a_changed_base_url_and_leaves_equality_alone():
    # A trigger's request keeps its encoded URL between polls; a rotated host must still be used at once.
    request = get_session_request("web", "s 1", "v1")
    first = request.url("http://a.example")
    assert request.url("http://a.example") is first
    assert (
        request.url("http://b.example/")
        == "http://b.example/observability.sessions.get?platform=web&session_id=s%201&version_key=v1"
    )
    # The kept URL is no field: requests still compare and hash by what they ask for.
    assert request == get_session_request("web", "s 1", "v1")
    assert hash(request) == hash(get_session_request("web", "s 1", "v1"))
    assert "a.example" not in repr(request)


@pytest.mark.parametrize(
    ("header", "body", "expected"),
    [
        ("12", None, 12.0),
        ("0.5", None, 0.5),
        (format_datetime(NOW + timedelta(seconds=30), usegmt=True), None, 30.0),
        (format_datetime(NOW - timedelta(hours=1), usegmt=True), None, 0.0),
        ("-5", {"retry_after": 4}, 4.0),
        ("soon", {"retry_after": 4}, 4.0),
        ("nan", None, None),
        ("inf", None, None),
        (None, {"retry_after": 9}, 9.0),
        (None, {"retry_after": -9}, None),
        (None, {"retry_after": True}, None),
        (None, {"retry_after": "9"}, None),
        (None, None, None),
    ],
)
def test_parse_retry_after(header, body, expected):
    assert parse_retry_after(header, body, now=NOW) == expected


def test_429_without_json_keeps_the_header_wait_and_is_transient():
    err = parse_error(429, {"Retry-After": "3"}, b"<html>slow down</html>")
    assert isinstance(err, DevRevUnexpectedResponseError)
    assert err.retry_after == 3.0
    assert is_transient(err)


def parse_error(status, headers, content):
    with pytest.raises(DevRevError) as caught:
        parse_response(REQ, status, headers, content, now=NOW)
    return caught.value


def test_200_without_session_is_unexpected_and_final():
    err = parse_error(200, {}, b'{"sessions": []}')
    assert isinstance(err, DevRevUnexpectedResponseError)
    assert "'session'" in str(err)
    assert not is_transient(err)


def test_unexpected_body_excerpt_is_at_most_200_characters():
    err = parse_error(502, {}, b"<html>" + b"x" * 10_000 + b"</html>")
    assert isinstance(err, DevRevUnexpectedResponseError)
    assert len(str(err)) < 350
    assert is_transient(err)


@pytest.mark.parametrize(
    "content",
    [b"", b"<html><title>401 Authorization Required</title></html>", b'{"error": "invalid_token"}', b"[]"],
    ids=["empty", "html", "json without type", "json list"],
)
def test_any_401_is_an_auth_error_whatever_its_body_and_final(content):
    err = parse_error(401, {"WWW-Authenticate": "Bearer"}, content)
    assert type(err) is DevRevAuthError
    assert err.status_code == 401
    assert "not a DevRev error" in str(err)
    assert (content.decode() or "(empty body)") in str(err)
    assert not is_transient(err)


def test_a_401_with_devrevs_body_keeps_devrevs_fields():
    err = parse_error(401, {}, b'{"type": "token_expired", "message": "The token expired.", "detail": "at 10:00"}')
    assert type(err) is DevRevAuthError
    assert (err.error_type, err.message, err.detail) == ("token_expired", "The token expired.", "at 10:00")


def test_wait_takes_the_larger_of_retry_after_and_backoff_and_caps_it():
    policy = RetryPolicy(max_retries=5, max_retry_wait=20, jitter=lambda: 0.0)
    limited = DevRevRateLimitError("x", status_code=429, retry_after=7)
    assert policy.wait_seconds(limited, 1) == 7
    assert policy.wait_seconds(DevRevServerError("x", status_code=503), 1) == 0.5
    assert policy.wait_seconds(DevRevServerError("x", status_code=503), 10) == 10  # half of the 20 s cap
    assert RetryPolicy(max_retry_wait=20, jitter=lambda: 0.999).wait_seconds(None, 30) <= 20


def test_a_wait_longer_than_max_retry_wait_is_not_retried_and_is_explained():
    policy = RetryPolicy(max_retry_wait=10)
    err = DevRevRateLimitError("x", status_code=429, retry_after=11)
    assert not policy.should_retry(err)
    clearer = policy.check_wait_acceptable(err)
    assert "11 s" in str(clearer)
    assert "max_retry_wait=10" in str(clearer)


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (404, SensorOutcome.NOT_YET),
        (429, SensorOutcome.KEEP_WAITING),
        (500, SensorOutcome.KEEP_WAITING),
        (502, SensorOutcome.KEEP_WAITING),
        (503, SensorOutcome.KEEP_WAITING),
        (504, SensorOutcome.KEEP_WAITING),
        (None, SensorOutcome.KEEP_WAITING),
        (400, SensorOutcome.FAIL),
        (401, SensorOutcome.FAIL),
        (403, SensorOutcome.FAIL),
        (413, SensorOutcome.FAIL),
        (501, SensorOutcome.KEEP_WAITING),
        (200, SensorOutcome.FAIL),
    ],
)
def test_sensor_outcome_table(status, outcome):
    from airflow_provider_devrev.exceptions import error_class_for_status

    cls = DevRevServerError if status is None else error_class_for_status(status)
    if status == 200:
        cls = DevRevUnexpectedResponseError
    assert sensor_outcome(cls("x", status_code=status)) is outcome


def test_ids_too_long_for_a_url_use_the_contracts_post_form():
    short = get_session_request("ios", "s" * 100, "v")
    long = get_session_request("ios", "é" * 1000, "v")

    assert (short.method, short.body) == ("GET", None)
    assert long.method == "POST"
    assert long.query == ()
    assert long.body == {"platform": "ios", "session_id": "é" * 1000, "version_key": "v"}
    assert long.url("https://api.devrev.ai") == "https://api.devrev.ai/observability.sessions.get"


def test_error_text_is_one_line_whatever_devrev_sends():
    err = parse_error(400, {}, b'{"type": "bad\\nrequest", "message": "line one\\nline two", "detail": "a\\r\\nb"}')
    assert str(err) == "DevRev API error 400 (bad request): line one line two; detail: a b"


def test_the_same_error_body_parsed_again_gives_each_error_its_own_body():
    # Error bodies are parsed once per distinct body; no error may see another's changes.
    from airflow_provider_devrev.contract import error_from_response, get_session_request

    request = get_session_request("android", "s1", "app@1")
    body = b'{"type": "not_found", "message": "no such session"}'
    first = error_from_response(request, 404, {}, body)
    first.body["message"] = "changed"
    second = error_from_response(request, 404, {}, body)

    assert type(second).__name__ == "DevRevNotFoundError"
    assert second.body == {"type": "not_found", "message": "no such session"}
    assert second.message == "no such session"
