"""DevRevHook against the simulator over real HTTP on 127.0.0.1."""

from __future__ import annotations

import json
import logging
from urllib.parse import quote

import pytest

from airflow_provider_devrev.exceptions import (
    DevRevAuthError,
    DevRevBadRequestError,
    DevRevError,
    DevRevForbiddenError,
    DevRevInvalidInputError,
    DevRevNotFoundError,
    DevRevPayloadTooLargeError,
    DevRevRateLimitError,
    DevRevServerError,
    DevRevUnexpectedResponseError,
)
from airflow_provider_devrev.hooks.devrev import DevRevHook
from tests.fakes import FakeSleep

GET_PATH = "/observability.sessions.get"


@pytest.fixture
def sleep() -> FakeSleep:
    return FakeSleep()


@pytest.fixture
def sim(devrev_simulator):
    return devrev_simulator


@pytest.fixture
def hook(sim, sleep) -> DevRevHook:
    return DevRevHook(sleep=sleep)


def _added(sim, kind: str, platform: str):
    session = sim.make_session(kind, platform=platform)
    return sim.add_session(session, version_key="com.example.app@1.0.0")


@pytest.mark.parametrize(("kind", "platform"), [("mobile", "android"), ("mobile", "ios"), ("web", "web")])
def test_get_session_returns_the_session_exactly(sim, hook, kind, platform):
    session = _added(sim, kind, platform)

    got = hook.get_session(platform, session["session_id"], "com.example.app@1.0.0")

    assert got == session
    assert json.loads(json.dumps(got)) == got
    [request] = sim.requests_for(path=GET_PATH)
    assert request.method == "GET"
    assert request.query == {
        "platform": platform,
        "session_id": session["session_id"],
        "version_key": "com.example.app@1.0.0",
    }
    assert request.headers.get("X-Devrev-Scope") == "beta"


def test_calls_reuse_one_keep_alive_connection_and_one_lookup(sim, hook, monkeypatch):
    session = _added(sim, "mobile", "android")
    lookups = []
    original = DevRevHook.get_connection

    def counting(conn_id):
        lookups.append(conn_id)
        return original(conn_id)

    monkeypatch.setattr(DevRevHook, "get_connection", staticmethod(counting))
    opened_before = sim.connections_opened
    for _ in range(20):
        hook.get_session("android", session["session_id"], "com.example.app@1.0.0")

    assert sim.connections_opened - opened_before == 1
    assert lookups == ["devrev_default"]


@pytest.mark.parametrize(
    ("status", "body", "error_class", "fields"),
    [
        (
            400,
            {"type": "invalid_field", "message": "bad field", "field_name": "session_id"},
            DevRevBadRequestError,
            {"error_type": "invalid_field", "message": "bad field"},
        ),
        (403, {"type": "forbidden", "message": "nope"}, DevRevForbiddenError, {"error_type": "forbidden"}),
        (
            413,
            {"type": "request_entity_too_large", "message": "too big", "max_bytes": 1024},
            DevRevPayloadTooLargeError,
            {"error_type": "request_entity_too_large", "max_bytes": 1024},
        ),
    ],
)
def test_final_statuses_raise_typed_errors_after_one_request(sim, hook, sleep, status, body, error_class, fields):
    sim.add_fault("status", status=status, body=body)

    with pytest.raises(error_class) as caught:
        hook.get_session("android", "any-session", "com.example.app@1.0.0")

    err = caught.value
    assert err.status_code == status
    for name, value in fields.items():
        assert getattr(err, name) == value
    assert len(sim.requests_for(path=GET_PATH)) == 1
    assert sleep.waits == []
    assert str(status) in str(err)
    assert "\n" not in str(err)


def test_unknown_session_is_404_not_found_after_one_request(sim, hook):
    with pytest.raises(DevRevNotFoundError) as caught:
        hook.get_session("ios", "no-such-session", "com.example.app@1.0.0")

    assert caught.value.status_code == 404
    assert caught.value.error_type == "not_found"
    assert len(sim.requests_for(path=GET_PATH)) == 1


def test_wrong_token_is_401_unauthenticated_after_one_request(sim, sleep, monkeypatch):
    conn = json.loads(sim.connection_json())
    conn["password"] = "not-the-simulator-token"
    monkeypatch.setenv("AIRFLOW_CONN_DEVREV_DEFAULT", json.dumps(conn))

    with pytest.raises(DevRevAuthError) as caught:
        DevRevHook(sleep=sleep).get_session("web", "s", "v")

    assert caught.value.error_type == "unauthenticated"
    assert len(sim.requests) == 1
    assert "not-the-simulator-token" not in str(caught.value)


def test_revoked_token_is_401_token_revoked(sim, hook):
    sim.revoke_token()

    with pytest.raises(DevRevAuthError) as caught:
        hook.get_session("web", "s", "v")

    assert caught.value.error_type == "token_revoked"
    assert len(sim.requests) == 1


@pytest.mark.parametrize(
    ("fault", "params"),
    [
        ("rate_limit", {"retry_after": 2}),
        ("server_error", {"status": 500}),
        ("server_error", {"status": 502}),
        ("server_error", {"status": 503}),
        ("server_error", {"status": 504}),
        ("drop", {}),
        ("slow", {"delay": 1.0}),
    ],
)
def test_transient_failures_are_retried_then_succeed(sim, sleep, fault, params):
    session = _added(sim, "mobile", "android")
    sim.add_fault(fault, times=2, **params)
    hook = DevRevHook(sleep=sleep, timeout=0.3)

    got = hook.get_session("android", session["session_id"], "com.example.app@1.0.0")

    assert got == session
    assert len(sim.requests_for(path=GET_PATH)) == 3
    assert len(sleep.waits) == 2
    assert all(wait > 0 for wait in sleep.waits), "a retry never follows at once"


@pytest.mark.parametrize(
    ("header", "body_retry_after", "expected"),
    [
        ("seconds", 7, 7),
        ("http-date", 7, 7),
        (None, 7, 7),
    ],
)
def test_retry_after_is_honoured(sim, sleep, header, body_retry_after, expected):
    session = _added(sim, "web", "web")
    sim.add_fault("rate_limit", retry_after=expected, header=header, body_retry_after=body_retry_after)

    got = DevRevHook(sleep=sleep).get_session("web", session["session_id"], "com.example.app@1.0.0")

    assert got == session
    assert len(sleep.waits) == 1
    # An HTTP date has one-second resolution (rounded either way) and is read a moment after it was written.
    assert expected - 1.5 <= sleep.waits[0] <= expected + 1.0


def test_retry_after_longer_than_max_retry_wait_fails_at_once(sim, sleep):
    sim.add_fault("rate_limit", retry_after=3600)

    with pytest.raises(DevRevRateLimitError) as caught:
        DevRevHook(sleep=sleep, max_retry_wait=60).get_session("web", "s", "v")

    assert "3600" in str(caught.value)
    assert "max_retry_wait=60" in str(caught.value)
    assert caught.value.retry_after == 3600
    assert sleep.waits == []
    assert len(sim.requests) == 1


def test_persistent_server_error_gives_up_after_max_retries_with_reference_id(sim, sleep):
    sim.add_fault("server_error", status=500, reference_id="ref-12345", times=None)

    with pytest.raises(DevRevServerError) as caught:
        DevRevHook(sleep=sleep, max_retries=3).get_session("android", "s", "v")

    assert caught.value.reference_id == "ref-12345"
    assert "ref-12345" in str(caught.value)
    assert len(sim.requests) == 4
    assert len(sleep.waits) == 3
    assert sleep.waits == sorted(sleep.waits) or max(sleep.waits) <= 60


def test_backoff_waits_never_exceed_max_retry_wait(sim, sleep):
    sim.add_fault("server_error", status=503, times=None)

    with pytest.raises(DevRevServerError):
        DevRevHook(sleep=sleep, max_retries=8, max_retry_wait=3).get_session("android", "s", "v")

    assert len(sleep.waits) == 8
    assert max(sleep.waits) <= 3


def test_read_timeout_is_retried_then_reported_clearly(sim, sleep):
    sim.add_fault("slow", delay=2.0, times=None)

    with pytest.raises(DevRevServerError) as caught:
        DevRevHook(sleep=sleep, timeout=0.2, max_retries=1).get_session("android", "s", "v")

    assert caught.value.status_code is None
    assert caught.value.error_type == "timeout"
    assert "0.2 s read timeout" in str(caught.value)
    assert len(sim.requests_for(path=GET_PATH)) == 2


def test_connection_refused_is_reported_after_retries(sim, sleep):
    hook = DevRevHook(sleep=sleep, max_retries=2)
    hook.settings  # read the connection while the simulator runs  # noqa: B018
    sim.stop()

    with pytest.raises(DevRevServerError) as caught:
        hook.get_session("android", "s", "v")

    assert caught.value.error_type == "connection_error"
    assert len(sleep.waits) == 2


@pytest.mark.parametrize(
    ("fault", "params", "excerpt"),
    [
        ("non_json", {"status": 200, "body": "<html><body>Gateway says hi</body></html>"}, "Gateway says hi"),
        ("truncated_json", {"status": 200}, "{"),
        ("non_json", {"status": 404, "body": "<html>not here</html>"}, "not here"),
    ],
)
def test_bodies_that_are_not_the_contract_raise_unexpected_response(sim, hook, fault, params, excerpt):
    session = _added(sim, "mobile", "ios")
    sim.add_fault(fault, **params)

    with pytest.raises(DevRevUnexpectedResponseError) as caught:
        hook.get_session("ios", session["session_id"], "com.example.app@1.0.0")

    assert excerpt in str(caught.value)
    assert len(str(caught.value)) < 400
    assert len(sim.requests) == 1


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (("windows", "s", "v"), "platform"),
        (("Android", "s", "v"), "platform"),
        ((None, "s", "v"), "platform"),
        (("ios", "", "v"), "session_id"),
        (("ios", "   ", "v"), "session_id"),
        (("ios", None, "v"), "session_id"),
        (("ios", 42, "v"), "session_id"),
        (("ios", "s", ""), "version_key"),
        (("ios", "s", ["v"]), "version_key"),
    ],
)
def test_bad_inputs_are_rejected_before_any_request(sim, hook, args, field):
    with pytest.raises(DevRevInvalidInputError) as caught:
        hook.get_session(*args)

    assert caught.value.field_name == field
    assert field in str(caught.value)
    assert repr(args[[0, 1, 2][["platform", "session_id", "version_key"].index(field)]]) in str(caught.value)
    assert isinstance(caught.value, ValueError)
    assert sim.requests == []


def test_platform_error_names_the_allowed_values(hook):
    with pytest.raises(DevRevInvalidInputError, match="android, ios, web"):
        hook.get_session("windows", "s", "v")


def test_awkward_ids_reach_the_simulator_exactly(sim, hook):
    awkward = "ünï cødé / ? # & = + %20 %zz 🚀"
    session = sim.add_session(sim.make_session("mobile", platform="android", session_id=awkward), version_key=awkward)

    assert hook.get_session("android", awkward, awkward) == session
    [request] = sim.requests_for(path=GET_PATH)
    assert request.query["session_id"] == awkward
    assert request.query["version_key"] == awkward


def logged(caplog, capsys) -> str:
    """Everything logged: stdlib records (caplog) and Airflow 3's structlog output (stdout/stderr)."""
    out = capsys.readouterr()
    return "\n".join([caplog.text, *(r.getMessage() for r in caplog.records), out.out, out.err])


def test_token_never_leaks_into_logs_errors_or_repr(sim, sleep, caplog, capsys):
    caplog.set_level(logging.DEBUG)
    hook = DevRevHook(sleep=sleep, max_retries=2)
    sim.add_fault("server_error", status=503, times=None)
    with pytest.raises(DevRevError) as caught:
        hook.get_session("web", "s", "v")
    sim.clear_faults()
    sim.revoke_token()
    with pytest.raises(DevRevAuthError) as revoked:
        hook.get_session("web", "s", "v")
    ok, message = hook.test_connection()

    token = sim.token
    assert not ok
    text_logged = logged(caplog, capsys)
    everything = [
        text_logged,
        str(caught.value),
        repr(caught.value),
        str(revoked.value),
        message,
        repr(hook),
        repr(hook.settings),
        repr(sim.requests),
    ]
    for text in everything:
        assert token not in text
    assert "retry 1 of 2" in text_logged, "the retries must have logged"


def test_retry_log_line_names_status_type_attempt_and_wait_only(sim, sleep, caplog, capsys):
    caplog.set_level(logging.WARNING)
    session = _added(sim, "mobile", "android")
    sim.add_fault("server_error", status=500, reference_id="ref-1")

    DevRevHook(sleep=sleep).get_session("android", session["session_id"], "com.example.app@1.0.0")

    # Airflow 2.11 logs through stdlib logging (caplog), Airflow 3 through structlog (stdout): one of them.
    from_records = [r.getMessage() for r in caplog.records if "retry" in r.getMessage()]
    [line] = from_records or [line for line in capsys.readouterr().out.splitlines() if "retry" in line]
    assert "status 500" in line
    assert "internal_error" in line
    assert "retry 1 of 5" in line
    assert " s" in line
    assert "{" not in line, "never a body"


def test_test_connection_names_the_user(sim, hook):
    ok, message = hook.test_connection()

    assert ok, message
    assert sim.url in message
    [request] = sim.requests
    assert (request.method, request.path) == ("GET", "/dev-users.self")


def test_test_connection_with_wrong_token_says_why(sim, monkeypatch):
    conn = json.loads(sim.connection_json())
    conn["password"] = "wrong-token-123456"
    monkeypatch.setenv("AIRFLOW_CONN_DEVREV_DEFAULT", json.dumps(conn))

    ok, message = DevRevHook().test_connection()

    assert not ok
    assert "401" in message
    assert "unauthenticated" in message
    assert "wrong-token-123456" not in message


def test_api_scope_extra_empty_sends_no_scope_header(sim, monkeypatch):
    conn = json.loads(sim.connection_json())
    conn["extra"] = {"api_scope": ""}
    monkeypatch.setenv("AIRFLOW_CONN_DEVREV_DEFAULT", json.dumps(conn))

    DevRevHook().test_connection()

    [request] = sim.requests
    assert all(name.lower() != "x-devrev-scope" for name in request.headers)


def test_uri_connection_extras_arrive_as_strings_and_are_coerced(sim, sleep, monkeypatch):
    # The URI form keeps a scheme in the host only percent-encoded (Airflow's convention).
    host = quote(f"http://{sim.host}:{sim.port}", safe="")
    uri = f"devrev://:{sim.token}@{host}/?timeout=0.2&max_retries=1&max_retry_wait=9"
    monkeypatch.setenv("AIRFLOW_CONN_DEVREV_DEFAULT", uri)
    sim.add_fault("slow", delay=2.0, times=None)
    hook = DevRevHook(sleep=sleep)

    with pytest.raises(DevRevServerError, match=r"0\.2 s read timeout"):
        hook.get_session("android", "s", "v")

    assert hook.settings.read_timeout == 0.2
    assert hook.settings.retry.max_retries == 1
    assert hook.settings.retry.max_retry_wait == 9
    # max_retries=1 was used: one wait, then the second and last attempt. Counted on the client's side: a
    # loaded simulator may not have read the second request yet when the client's 0.2 s have run out.
    assert len(sleep.waits) == 1


@pytest.mark.parametrize(
    ("extra", "name"),
    [
        ({"timeout": "soon"}, "timeout"),
        ({"timeout": -1}, "timeout"),
        ({"max_retries": "lots"}, "max_retries"),
        ({"max_retries": -2}, "max_retries"),
        ({"max_retry_wait": "0"}, "max_retry_wait"),
        ({"allow_insecure_http": "maybe"}, "allow_insecure_http"),
    ],
)
def test_bad_extras_fail_naming_the_extra_before_any_request(sim, monkeypatch, extra, name):
    conn = json.loads(sim.connection_json())
    conn["extra"] = extra
    monkeypatch.setenv("AIRFLOW_CONN_DEVREV_DEFAULT", json.dumps(conn))

    with pytest.raises(DevRevInvalidInputError) as caught:
        DevRevHook().get_session("web", "s", "v")

    assert f"extra {name}" in str(caught.value)
    assert repr(next(iter(extra.values()))) in str(caught.value)
    assert sim.requests == []


def test_constructor_arguments_override_extras_and_are_validated_at_once(sim, monkeypatch):
    conn = json.loads(sim.connection_json())
    conn["extra"] = {"timeout": 99, "max_retries": 9}
    monkeypatch.setenv("AIRFLOW_CONN_DEVREV_DEFAULT", json.dumps(conn))

    hook = DevRevHook(timeout=5, max_retries=0)
    assert hook.settings.read_timeout == 5
    assert hook.settings.connect_timeout == 5
    assert hook.settings.retry.max_retries == 0
    with pytest.raises(DevRevInvalidInputError, match="timeout"):
        DevRevHook(timeout=0)


def test_default_timeouts_are_10s_connect_30s_read(sim):
    settings = DevRevHook().settings
    assert (settings.connect_timeout, settings.read_timeout) == (10, 30)


@pytest.mark.parametrize("host", ["http://devrev.example.com", "http://10.1.2.3:8080"])
def test_plain_http_to_a_remote_host_is_refused(sim, monkeypatch, host):
    monkeypatch.setenv(
        "AIRFLOW_CONN_DEVREV_DEFAULT",
        json.dumps({"conn_type": "devrev", "host": host, "password": sim.token}),
    )

    with pytest.raises(DevRevError, match="allow_insecure_http") as caught:
        DevRevHook().get_session("web", "s", "v")

    assert "https://" in str(caught.value)
    assert sim.token not in str(caught.value)


def test_plain_http_to_a_remote_host_is_allowed_when_the_connection_says_so(sim, monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_DEVREV_DEFAULT",
        json.dumps(
            {
                "conn_type": "devrev",
                "host": "http://devrev.internal:8080",
                "password": sim.token,
                "extra": {"allow_insecure_http": "true"},
            }
        ),
    )
    assert DevRevHook().settings.base_url == "http://devrev.internal:8080"


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("", "https://api.devrev.ai"),
        (None, "https://api.devrev.ai"),
        ("api.devrev.ai", "https://api.devrev.ai"),
    ],
)
def test_empty_host_means_devrev_cloud(monkeypatch, host, expected):
    conn = {"conn_type": "devrev", "password": "a-real-looking-token-123"}
    if host is not None:
        conn["host"] = host
    monkeypatch.setenv("AIRFLOW_CONN_DEVREV_DEFAULT", json.dumps(conn))
    assert DevRevHook().settings.base_url == expected


@pytest.mark.parametrize("token", ["", "abcd"])
def test_missing_or_unmaskably_short_token_is_refused(monkeypatch, token):
    monkeypatch.setenv(
        "AIRFLOW_CONN_DEVREV_DEFAULT",
        json.dumps({"conn_type": "devrev", "host": "https://x.test", "password": token}),
    )
    with pytest.raises(DevRevError, match="token") as caught:
        DevRevHook().get_session("web", "s", "v")
    if token:
        assert token not in str(caught.value)


def test_the_simulators_uri_form_works_as_a_connection(sim, monkeypatch):
    session = _added(sim, "web", "web")
    monkeypatch.setenv("AIRFLOW_CONN_DEVREV_DEFAULT", sim.connection_uri(timeout=5))

    hook = DevRevHook()

    assert hook.get_session("web", session["session_id"], "com.example.app@1.0.0") == session
    assert hook.settings.base_url == sim.url
    assert hook.settings.read_timeout == 5


def test_the_token_is_registered_with_airflows_secret_masker(sim):
    from airflow.providers.common.compat.sdk import redact

    DevRevHook().settings  # noqa: B018  (reading the connection registers the token)

    assert sim.token not in str(redact(f"token={sim.token}"))
