"""Behaviour of the DevRev simulator over real HTTP on 127.0.0.1."""

from __future__ import annotations

import email.utils
import json
import socket
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
import requests

from airflow_provider_devrev.testing import DEFAULT_TOKEN, DevRevSimulator, RecordedRequest
from airflow_provider_devrev.testing.data import (
    SEED_ANDROID_SESSION_ID,
    SEED_IOS_SESSION_ID,
    SEED_VERSION_KEY,
    SEED_VERSION_KEYS,
    SEED_WEB_SESSION_ID,
    SEED_WEB_VERSION_KEY,
    isoformat_ms,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

GET = "/observability.sessions.get"
LIST = "/observability.sessions.list"
SELF = "/dev-users.self"
ANDROID = {"platform": "android", "session_id": SEED_ANDROID_SESSION_ID, "version_key": SEED_VERSION_KEY}
TIMEOUT = 10


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def sim() -> Iterator[DevRevSimulator]:
    with DevRevSimulator(seed=0) as simulator:
        yield simulator


def auth(sim: DevRevSimulator, token: str | None = None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token or sim.token}"}


def get(sim: DevRevSimulator, path: str = GET, client: Any = requests, **params: Any) -> requests.Response:
    response: requests.Response = client.get(sim.url + path, params=params, headers=auth(sim), timeout=TIMEOUT)
    return response


def post(sim: DevRevSimulator, path: str, body: Any) -> requests.Response:
    return requests.post(sim.url + path, json=body, headers=auth(sim), timeout=TIMEOUT)


def add(sim: DevRevSimulator, kind: str = "mobile", version_key: str = "app@1", **kwargs: Any) -> dict[str, Any]:
    appear = {k: kwargs.pop(k) for k in ("appear_after_requests", "appear_after_seconds") if k in kwargs}
    return sim.add_session(sim.make_session(kind, **kwargs), version_key=version_key, **appear)


def lookup(sim: DevRevSimulator, session: dict[str, Any], version_key: str = "app@1") -> requests.Response:
    return get(sim, platform=session["platform"], session_id=session["session_id"], version_key=version_key)


# -- the data set -----------------------------------------------------------------------------------


def test_seeded_data_set_and_well_known_ids(sim: DevRevSimulator) -> None:
    sessions = sim.sessions
    assert 20 <= len(sessions) <= 60
    assert {s["platform"] for s in sessions} == {"android", "ios", "web"}
    assert sim.seed_version_keys == list(SEED_VERSION_KEYS)
    for platform, session_id, key in [
        ("android", SEED_ANDROID_SESSION_ID, SEED_VERSION_KEY),
        ("ios", SEED_IOS_SESSION_ID, SEED_VERSION_KEY),
        ("web", SEED_WEB_SESSION_ID, SEED_WEB_VERSION_KEY),
    ]:
        response = get(sim, platform=platform, session_id=session_id, version_key=key)
        assert response.status_code == 200
        assert response.json()["session"]["session_id"] == session_id
    assert get(sim, **ANDROID).json()["session"]["is_crash"] is True
    ios = get(sim, platform="ios", session_id=SEED_IOS_SESSION_ID, version_key=SEED_VERSION_KEY).json()
    assert (ios["session"]["rage_tap"], ios["session"]["is_crash"]) == (True, False)
    web = get(sim, platform="web", session_id=SEED_WEB_SESSION_ID, version_key=SEED_WEB_VERSION_KEY).json()
    assert web["session"]["console_metadata"]["error"] > 0
    assert web["session"]["network_metadata"]["status_counts"]["500"] == 1
    assert any(s["type"] == "mobile" and s["is_anr"] for s in sessions)
    assert any(s["type"] == "web" and s["rage_click_count"] for s in sessions)


def test_seed_determinism() -> None:
    def generated(seed: int) -> list[dict[str, Any]]:
        return DevRevSimulator(seed=seed).sessions

    assert generated(3) == generated(3)
    assert generated(3) != generated(4)
    well_known = {SEED_ANDROID_SESSION_ID, SEED_IOS_SESSION_ID, SEED_WEB_SESSION_ID}
    pick = [[s for s in generated(seed) if s["session_id"] in well_known] for seed in (3, 4)]
    assert pick[0] == pick[1]
    assert len(pick[0]) == 3


def test_sessions_are_copies_and_make_session_merges_overrides(sim: DevRevSimulator) -> None:
    sim.sessions[0]["session_id"] = "mutated"
    assert all(s["session_id"] != "mutated" for s in sim.sessions)
    made = sim.make_session("mobile", platform="ios", device_metadata={"app_version": "9.9.9"}, is_crash=True)
    assert made["device_metadata"]["app_version"] == "9.9.9"
    assert made["device_metadata"]["model"]  # the other required metadata is kept
    assert made["is_crash"] is True
    assert made["platform"] == "ios"
    assert sim.make_session("web")["platform"] == "web"
    with pytest.raises(ValueError, match="platform"):
        sim.make_session("web", platform="ios")
    with pytest.raises(ValueError, match="kind"):
        sim.make_session("desktop")


def test_add_session_validation_and_remove(sim: DevRevSimulator) -> None:
    session = sim.make_session("mobile")
    del session["platform"]
    with pytest.raises(ValueError, match="platform"):
        sim.add_session(session, version_key="app@1")
    with pytest.raises(ValueError, match="created_at"):
        sim.add_session({"type": "web", "session_id": "x"}, version_key="app@1")
    with pytest.raises(ValueError, match="appear_after_requests"):
        add(sim, appear_after_requests=0)
    added = add(sim, "web")
    assert lookup(sim, added).status_code == 200
    sim.remove_session(added["session_id"])
    response = lookup(sim, added)
    assert response.status_code == 404
    assert response.json()["type"] == "not_found"
    with pytest.raises(KeyError):
        sim.remove_session("never-added")


# -- appearing sessions ------------------------------------------------------------------------------


@pytest.mark.parametrize("k", [1, 2, 4])
def test_appear_after_requests(sim: DevRevSimulator, k: int) -> None:
    session = add(sim, appear_after_requests=k)
    other = add(sim)  # requests for another session do not count
    assert lookup(sim, other).status_code == 200
    statuses = [lookup(sim, session).status_code for _ in range(k + 1)]
    assert statuses == [404] * (k - 1) + [200, 200]
    logged = sim.requests_for(path=GET, session_id=session["session_id"])
    assert [r.status for r in logged] == statuses
    assert lookup(sim, session).json()["session"] == session


def test_pending_session_is_missing_from_lists_until_it_appears(sim: DevRevSimulator) -> None:
    session = add(sim, appear_after_requests=2)

    def listed() -> list[str]:
        body = get(sim, LIST, platform="android", version_key="app@1").json()
        return [s["session_id"] for s in body["sessions"]]

    assert listed() == []
    assert session not in sim.sessions
    assert lookup(sim, session).status_code == 404
    assert listed() == []  # a list request is not a lookup of that session
    assert lookup(sim, session).status_code == 200
    assert listed() == [session["session_id"]]


def test_appear_after_seconds_with_fake_clock() -> None:
    clock = FakeClock()
    with DevRevSimulator(clock=clock, seed_data=False) as sim:
        session = add(sim, "web", appear_after_seconds=30)
        assert lookup(sim, session).status_code == 404
        clock.advance(29.999)
        assert lookup(sim, session).status_code == 404
        assert sim.sessions == []
        clock.advance(0.001)
        assert lookup(sim, session).status_code == 200
        assert [s["session_id"] for s in sim.sessions] == [session["session_id"]]
        assert [r.time for r in sim.requests] == [1_000.0, 1_029.999, 1_030.0]


# -- faults ------------------------------------------------------------------------------------------


def test_rate_limit_fault_seconds_header(sim: DevRevSimulator) -> None:
    sim.add_fault("rate_limit", retry_after=3)
    response = get(sim, **ANDROID)
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "3"
    assert response.json() == {
        "type": "too_many_requests",
        "message": response.json()["message"],
        "retry_after": 3,
    }
    assert get(sim, **ANDROID).status_code == 200


def test_rate_limit_fault_http_date_header(sim: DevRevSimulator) -> None:
    sim.add_fault("rate_limit", retry_after=120, header="http-date")
    before = datetime.now(UTC)
    response = get(sim, SELF)
    when = email.utils.parsedate_to_datetime(response.headers["Retry-After"])
    assert response.headers["Retry-After"].endswith(" GMT")
    assert before + timedelta(seconds=119) <= when <= before + timedelta(seconds=123)
    assert response.json()["retry_after"] == 120


def test_rate_limit_fault_variants(sim: DevRevSimulator) -> None:
    sim.add_fault("rate_limit", header=None, body_retry_after=None)
    sim.add_fault("rate_limit", retry_after=0.25)
    sim.add_fault("rate_limit", retry_after=5, body_retry_after=7)
    bare = get(sim, SELF)
    assert "Retry-After" not in bare.headers
    assert "retry_after" not in bare.json()
    fractional = get(sim, SELF)
    assert fractional.headers["Retry-After"] == "0.25"
    assert fractional.json()["retry_after"] == 0
    assert get(sim, SELF).json()["retry_after"] == 7


def test_server_error_faults(sim: DevRevSimulator) -> None:
    sim.add_fault("server_error")
    sim.add_fault("server_error", status=503)
    sim.add_fault("server_error", status=502)
    sim.add_fault("server_error", status=504)
    first = get(sim, **ANDROID)
    assert first.status_code == 500
    assert first.json()["type"] == "internal_error"
    assert first.json()["reference_id"]
    assert get(sim, **ANDROID).json()["type"] == "service_unavailable"
    for status in (502, 504):
        page = get(sim, **ANDROID)
        assert page.status_code == status
        assert page.headers["Content-Type"] == "text/html"
        assert str(status) in page.text
    with pytest.raises(ValueError, match="status"):
        sim.add_fault("server_error", status=501)


def test_status_fault_any_body_and_headers(sim: DevRevSimulator) -> None:
    sim.add_fault("status", status=418, body={"type": "teapot", "nested": [1, None]}, headers={"X-Why": "tea"})
    response = get(sim, SELF)
    assert response.status_code == 418
    assert response.json() == {"type": "teapot", "nested": [1, None]}
    assert response.headers["X-Why"] == "tea"
    assert response.headers["Content-Type"] == "application/json"


def test_slow_fault_read_timeout_then_normal(sim: DevRevSimulator) -> None:
    sim.add_fault("slow", delay=0.5)
    with pytest.raises(requests.ReadTimeout):
        requests.get(sim.url + GET, params=ANDROID, headers=auth(sim), timeout=(5, 0.1))
    sim.add_fault("slow", delay=0.05)
    started = time.monotonic()
    assert get(sim, **ANDROID).status_code == 200
    assert time.monotonic() - started >= 0.05


def test_stop_interrupts_slow_fault() -> None:
    arrived = threading.Event()
    armed = False

    def clock() -> float:
        if armed:
            arrived.set()  # the simulator reads its clock when a request arrives
        return time.monotonic()

    sim = DevRevSimulator(clock=clock).start()
    sim.add_fault("slow", delay=60)
    outcome: list[BaseException | int] = []

    def call() -> None:
        try:
            outcome.append(get(sim, SELF).status_code)
        except requests.RequestException as exc:
            outcome.append(exc)

    armed = True
    caller = threading.Thread(target=call)
    caller.start()
    assert arrived.wait(TIMEOUT)
    started = time.monotonic()
    sim.stop()
    assert time.monotonic() - started < 3
    caller.join(TIMEOUT)
    assert len(outcome) == 1
    assert isinstance(outcome[0], requests.ConnectionError)


def test_drop_fault(sim: DevRevSimulator) -> None:
    sim.add_fault("drop")
    with pytest.raises(requests.ConnectionError):
        get(sim, **ANDROID)
    assert get(sim, **ANDROID).status_code == 200
    dropped, answered = sim.requests
    assert (dropped.status, dropped.fault) == (None, "drop")
    assert (answered.status, answered.fault) == (200, None)


def test_non_json_fault(sim: DevRevSimulator) -> None:
    sim.add_fault("non_json")
    sim.add_fault("non_json", status=502, body="Bad gateway", content_type="text/plain")
    page = get(sim, **ANDROID)
    assert page.status_code == 200
    assert page.headers["Content-Type"] == "text/html"
    assert page.text.startswith("<html>")
    with pytest.raises(ValueError):  # noqa: PT011 - requests' JSONDecodeError is a ValueError
        page.json()
    plain = get(sim, **ANDROID)
    assert (plain.status_code, plain.text, plain.headers["Content-Type"]) == (
        502,
        "Bad gateway",
        "text/plain",
    )


def test_truncated_json_fault(sim: DevRevSimulator) -> None:
    full = get(sim, **ANDROID).content
    sim.add_fault("truncated_json")
    response = get(sim, **ANDROID)
    assert response.status_code == 200
    assert int(response.headers["Content-Length"]) == len(response.content) == len(full) // 2
    assert full.startswith(response.content)
    with pytest.raises(ValueError):  # noqa: PT011 - requests' JSONDecodeError is a ValueError
        response.json()


def test_revoked_fault_is_one_off(sim: DevRevSimulator) -> None:
    sim.add_fault("revoked")
    assert get(sim, **ANDROID).json()["type"] == "token_revoked"
    assert get(sim, **ANDROID).status_code == 200


def test_faults_consumed_in_order_and_times(sim: DevRevSimulator) -> None:
    sim.add_fault("rate_limit", times=2, retry_after=0)
    sim.add_fault("server_error")
    statuses = [get(sim, SELF).status_code for _ in range(4)]
    assert statuses == [429, 429, 500, 200]
    assert [r.fault for r in sim.requests] == ["rate_limit", "rate_limit", "server_error", None]


def test_fault_forever_until_cleared(sim: DevRevSimulator) -> None:
    sim.add_fault("server_error", times=None, status=503)
    assert [get(sim, SELF).status_code for _ in range(5)] == [503] * 5
    sim.clear_faults()
    assert get(sim, SELF).status_code == 200


def test_fault_filters_by_path_and_session_id(sim: DevRevSimulator) -> None:
    sim.add_fault("server_error", path="observability.sessions.list", times=None)
    sim.add_fault("status", session_id=SEED_IOS_SESSION_ID, times=2, status=404, body={"type": "not_found"})
    assert get(sim, **ANDROID).status_code == 200
    assert get(sim, LIST, platform="web", version_key=SEED_WEB_VERSION_KEY).status_code == 500
    ios = {"platform": "ios", "session_id": SEED_IOS_SESSION_ID, "version_key": SEED_VERSION_KEY}
    assert get(sim, **ios).status_code == 404
    assert post(sim, GET, ios).status_code == 404  # the session id is read from a POST body too
    assert get(sim, **ios).status_code == 200


def test_fault_precedes_auth(sim: DevRevSimulator) -> None:
    sim.add_fault("server_error")
    assert requests.get(sim.url + SELF, timeout=TIMEOUT).status_code == 500
    assert requests.get(sim.url + SELF, timeout=TIMEOUT).status_code == 401


def test_fault_validation(sim: DevRevSimulator) -> None:
    with pytest.raises(ValueError, match="unknown fault kind"):
        sim.add_fault("explode")
    with pytest.raises(TypeError, match="retry"):
        sim.add_fault("drop", retry_after=1)
    with pytest.raises(ValueError, match="delay"):
        sim.add_fault("slow")
    with pytest.raises(ValueError, match="times"):
        sim.add_fault("drop", times=0)


# -- auth and the token ------------------------------------------------------------------------------


def test_set_and_revoke_token(sim: DevRevSimulator) -> None:
    old = sim.token
    sim.set_token("rotated-token-abcdefghijklmnopqrstuvwxyz")
    assert requests.get(sim.url + SELF, headers=auth(sim, old), timeout=TIMEOUT).json()["type"] == "unauthenticated"
    assert get(sim, SELF).status_code == 200
    sim.revoke_token()
    assert get(sim, SELF).json()["type"] == "token_revoked"
    sim.set_token(old)
    assert get(sim, SELF).status_code == 200
    with pytest.raises(ValueError, match="token"):
        sim.set_token("has space")


def test_rotate_token_revokes_every_earlier_token_and_the_log_numbers_them(sim: DevRevSimulator) -> None:
    first = sim.token
    sim.rotate_token("second-token-0123456789abcdefghijklmn")
    sim.rotate_token("third-token-0123456789abcdefghijklmno")

    answers = [
        requests.get(sim.url + SELF, headers=auth(sim, token), timeout=TIMEOUT)
        for token in (
            first,
            "second-token-0123456789abcdefghijklmn",
            "third-token-0123456789abcdefghijklmno",
            "never-accepted-0123456789abcdefghijk",
        )
    ]

    assert [a.status_code for a in answers] == [401, 401, 200, 401]
    assert [a.json().get("type") for a in answers[:2] + answers[3:]] == [
        "token_revoked",
        "token_revoked",
        "unauthenticated",
    ]
    assert [r.token for r in sim.requests] == [1, 2, 3, None]
    requests.get(sim.url + SELF, timeout=TIMEOUT)
    assert sim.requests[-1].token is None


def test_at_request_runs_the_action_before_that_request_is_answered(sim: DevRevSimulator) -> None:
    sim.at_request(2, lambda: sim.rotate_token("rotated-at-two-0123456789abcdefghij"))
    old = sim.token

    statuses = [requests.get(sim.url + SELF, headers=auth(sim, old), timeout=TIMEOUT).status_code for _ in range(2)]

    assert statuses == [200, 401]
    assert sim.token == "rotated-at-two-0123456789abcdefghij"
    assert get(sim, SELF).status_code == 200
    assert [r.token for r in sim.requests] == [1, 1, 2]
    with pytest.raises(ValueError, match="number"):
        sim.at_request(0, lambda: None)


def test_request_log_never_contains_the_token(sim: DevRevSimulator, capfd: pytest.CaptureFixture[str]) -> None:
    token = sim.token
    get(sim, **ANDROID)
    requests.get(sim.url + SELF, headers={"authorization": f"bearer {token}"}, timeout=TIMEOUT)
    requests.get(sim.url + SELF, headers=auth(sim, "wrong"), timeout=TIMEOUT)
    requests.get(sim.url + SELF, params={"leak": token}, headers={"X-Leak": f"x{token}x"}, timeout=TIMEOUT)
    requests.post(sim.url + GET, json={"session_id": token}, headers=auth(sim), timeout=TIMEOUT)
    requests.post(sim.url + GET, data=f"not json {token}", headers=auth(sim), timeout=TIMEOUT)
    sim.set_token("second-token-0123456789abcdefghijklmn")
    requests.get(sim.url + SELF, headers=auth(sim, token), timeout=TIMEOUT)
    logged = sim.requests
    assert len(logged) == 7
    authorizations = [next((v for k, v in r.headers.items() if k.lower() == "authorization"), None) for r in logged]
    assert authorizations == [
        "Bearer ***",
        "Bearer ***",
        "<invalid>",
        None,
        "Bearer ***",
        "Bearer ***",
        "<invalid>",
    ]
    for request in logged:
        for text in (repr(request), str(request), json.dumps(request.headers), json.dumps(request.query)):
            assert token not in text
    out, err = capfd.readouterr()
    assert token not in out + err
    assert err == ""


def test_request_record_fields(sim: DevRevSimulator) -> None:
    post(sim, GET, {**ANDROID, "extra": [1, 2]})
    get(sim, LIST, platform="web", version_key=SEED_WEB_VERSION_KEY, limit="", sort_by="created_at")
    first, second = sim.requests
    assert isinstance(first, RecordedRequest)
    assert (first.method, first.path, first.query, first.status) == ("POST", GET, {}, 200)
    assert first.body == {**ANDROID, "extra": [1, 2]}
    assert first.session_id == SEED_ANDROID_SESSION_ID
    assert second.query == {
        "platform": "web",
        "version_key": SEED_WEB_VERSION_KEY,
        "limit": "",
        "sort_by": "created_at",
    }
    assert (second.body, second.session_id, second.status) == (None, None, 400)  # limit="" is not an int
    with pytest.raises(AttributeError):
        first.status = 1  # type: ignore[misc]
    assert sim.requests_for(path="observability.sessions.get") == [first]
    sim.clear_requests()
    assert sim.requests == []


# -- transport ---------------------------------------------------------------------------------------


def test_keep_alive_reuses_one_connection() -> None:
    with DevRevSimulator() as sim, requests.Session() as client:
        client.headers.update(auth(sim))
        for _ in range(20):
            assert client.get(sim.url + GET, params=ANDROID, timeout=TIMEOUT).status_code == 200
        assert client.post(sim.url + GET, json=ANDROID, timeout=TIMEOUT).status_code == 200
        assert client.get(sim.url + "/nope", timeout=TIMEOUT).status_code == 404  # errors keep it open too
        assert sim.connections_opened == 1
        get(sim, SELF)  # no session: a connection of its own
        assert sim.connections_opened == 2


def test_stop_and_start_on_the_same_port() -> None:
    sim = DevRevSimulator().start()
    port, url = sim.port, sim.url
    client = requests.Session()
    assert client.get(url + SELF, headers=auth(sim), timeout=TIMEOUT).status_code == 200
    sim.stop()
    assert not sim.running
    with pytest.raises(requests.ConnectionError):
        client.get(url + SELF, headers=auth(sim), timeout=TIMEOUT)  # the pooled connection is gone too
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0  # refused
    with sim:
        assert sim.port == port
        assert client.get(url + SELF, headers=auth(sim), timeout=TIMEOUT).status_code == 200
    sim.stop()  # idempotent
    client.close()


def test_unknown_path_and_wrong_method(sim: DevRevSimulator) -> None:
    missing = get(sim, "/observability.sessions.nope")
    assert (missing.status_code, missing.json()["type"]) == (404, "not_found")
    wrong = requests.delete(sim.url + GET, headers=auth(sim), timeout=TIMEOUT)
    assert wrong.status_code == 405
    assert wrong.headers["Allow"] == "GET, POST"
    assert requests.post(sim.url + SELF, headers=auth(sim), timeout=TIMEOUT).status_code == 405
    assert requests.get(sim.url + SELF, timeout=TIMEOUT).status_code == 401  # auth comes before routing


def test_chunked_request_body(sim: DevRevSimulator) -> None:
    chunks = (part.encode() for part in (json.dumps(ANDROID)[:10], json.dumps(ANDROID)[10:]))
    response = requests.post(sim.url + GET, data=chunks, headers=auth(sim), timeout=TIMEOUT)
    assert response.status_code == 200
    assert sim.requests[-1].body == ANDROID


def test_concurrent_requests(sim: DevRevSimulator) -> None:
    statuses: list[int] = []
    lock = threading.Lock()

    def call() -> None:
        status = get(sim, **ANDROID).status_code
        with lock:
            statuses.append(status)

    threads = [threading.Thread(target=call) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TIMEOUT)
    assert statuses == [200] * 16
    assert len(sim.requests) == 16


def test_rate_limit_option_with_fake_clock() -> None:
    clock = FakeClock()
    with DevRevSimulator(clock=clock, rate_limit=(2, 10.0)) as sim:
        first, second, third = (get(sim, SELF) for _ in range(3))
        assert (first.status_code, second.status_code, third.status_code) == (200, 200, 429)
        assert (first.headers["X-Ratelimit-Limit"], first.headers["X-Ratelimit-Remaining"]) == ("2", "1")
        assert third.headers["Retry-After"] == "10"
        assert third.json()["retry_after"] == 10
        clock.advance(10)
        assert get(sim, SELF).status_code == 200


def test_loopback_only() -> None:
    for host in ("0.0.0.0", "192.168.1.10", "example.com", ""):
        with pytest.raises(ValueError, match="loopback"):
            DevRevSimulator(host=host)


def test_connection_strings() -> None:
    token = "tok/en:with@odd&chars=+%"
    with DevRevSimulator(token=token) as sim:
        conn = json.loads(sim.connection_json(timeout=5))
        assert conn == {"conn_type": "devrev", "host": sim.url, "password": token, "extra": {"timeout": 5}}
        assert json.loads(sim.connection_json(conn_type="http"))["conn_type"] == "http"
        uri = sim.connection_uri(allow_insecure_http=True, note="a b&c")
        parts = urlsplit(uri)
        host = f"http%3A%2F%2F127.0.0.1%3A{sim.port}"
        assert uri.startswith(f"devrev://:{parts.password}@{host}/?")
        assert parts.scheme == "devrev"
        assert unquote(parts.password or "") == token
        assert parse_qs(parts.query) == {"allow_insecure_http": ["true"], "note": ["a b&c"]}
        assert sim.connection_uri() == f"devrev://:{parts.password}@{host}/"
        assert requests.get(sim.url + SELF, headers={"Authorization": f"Bearer {token}"}, timeout=TIMEOUT).ok


def test_url_before_start_and_default_token() -> None:
    sim = DevRevSimulator()
    assert sim.token == DEFAULT_TOKEN
    assert len(DEFAULT_TOKEN) >= 32
    with pytest.raises(RuntimeError, match="start"):
        _ = sim.url


# -- lists -------------------------------------------------------------------------------------------


def test_paging_through_a_thousand_sessions() -> None:
    base = datetime(2025, 1, 1, tzinfo=UTC)
    with DevRevSimulator(seed_data=False, page_size=7) as sim:
        for index in range(1_000):
            # Many equal timestamps, so the session_id tie-break matters.
            created = isoformat_ms(base + timedelta(seconds=index // 3))
            sim.add_session(sim.make_session("mobile", created_at=created), version_key="big@1")
        expected = [(s["created_at"], s["session_id"]) for s in sim.sessions]
        seen: list[tuple[str, str]] = []
        cursor = None
        pages = 0
        with requests.Session() as client:
            client.headers.update(auth(sim))
            while True:
                params: dict[str, Any] = {"platform": "android", "version_key": "big@1", "limit": 100}
                if cursor:
                    params["cursor"] = cursor
                body = client.get(sim.url + LIST, params=params, timeout=TIMEOUT).json()
                pages += 1
                seen += [(s["created_at"], s["session_id"]) for s in body["sessions"]]
                cursor = body.get("next_cursor")
                if cursor is None:
                    break
            assert pages == 10
            assert seen == expected
            assert len(set(seen)) == 1_000
            default_page = client.get(sim.url + LIST, params={"platform": "android", "version_key": "big@1"})
            assert len(default_page.json()["sessions"]) == 7


def test_paging_backwards_and_the_keyset_modes_stability_under_inserts(sim: DevRevSimulator) -> None:
    """The simulator's default ``keyset`` mode is stable under inserts; DevRev's cursor is not known to be, and
    the other modes are not (tests/testing/test_simulator_cursor_modes.py)."""
    assert sim.cursor_mode == "keyset"
    params = {"platform": "web", "version_key": SEED_WEB_VERSION_KEY}
    everything = [s["session_id"] for s in get(sim, LIST, **params, limit=100).json()["sessions"]]
    last = get(sim, LIST, **params, limit=3, mode="before").json()
    assert [s["session_id"] for s in last["sessions"]] == everything[-3:]
    assert "next_cursor" not in last
    earlier = get(sim, LIST, **params, limit=3, mode="before", cursor=last["prev_cursor"]).json()
    assert [s["session_id"] for s in earlier["sessions"]] == everything[-6:-3]
    first = get(sim, LIST, **params, limit=4).json()
    # In keyset mode, a session created before the cursor position does not shift the next page.
    sim.add_session(sim.make_session("web", created_at="2000-01-01T00:00:00.000Z"), version_key=SEED_WEB_VERSION_KEY)
    second = get(sim, LIST, **params, limit=4, cursor=first["next_cursor"]).json()
    assert [s["session_id"] for s in second["sessions"]] == everything[4:8]
    bad = get(sim, LIST, **params, cursor=first["next_cursor"], sort_by="session_duration_ms")
    assert (bad.status_code, bad.json()["field_name"]) == (400, "cursor")


def test_sort_by_duration_descending(sim: DevRevSimulator) -> None:
    body = get(sim, LIST, platform="android", version_key=SEED_VERSION_KEY, sort_by="session_duration_ms:desc")
    durations = [s["session_duration_ms"] for s in body.json()["sessions"]]
    assert durations == sorted(durations, reverse=True)
    assert len(durations) == 12


def test_mobile_filters(sim: DevRevSimulator) -> None:
    scope = {"type": "mobile", "platform": "android", "version_key": SEED_VERSION_KEY}
    every = post(sim, LIST, scope).json()["sessions"]

    def ids(**filters: Any) -> set[str]:
        return {s["session_id"] for s in post(sim, LIST, {**scope, **filters}).json()["sessions"]}

    assert ids(is_crash=True) == {s["session_id"] for s in every if s["is_crash"]}
    assert SEED_ANDROID_SESSION_ID in ids(is_crash=True)
    assert ids(is_crash=False, is_anr=False) == {
        s["session_id"] for s in every if not s["is_crash"] and not s["is_anr"]
    }
    os_version = every[0]["device_metadata"]["os_version"]
    assert ids(os_version=[os_version]) == {
        s["session_id"] for s in every if s["device_metadata"]["os_version"] == os_version
    }
    assert ids(app_version=["5.2.0"]) == {s["session_id"] for s in every}
    assert ids(app_version=[]) == set()
    # Both bounds of a created_at range are inclusive.
    target = next(s for s in every if s["session_id"] == SEED_ANDROID_SESSION_ID)
    at = target["created_at"]
    assert SEED_ANDROID_SESSION_ID in ids(created_at={"type": "range", "after": at, "before": at})
    assert ids(created_at={"type": "range", "after": at, "before": at}) == {
        s["session_id"] for s in every if s["created_at"] == at
    }
    duration = target["session_duration_ms"]
    assert SEED_ANDROID_SESSION_ID in ids(session_duration={"min_ms": duration, "max_ms": duration})
    assert ids(created_at={"type": "preset", "preset_type": "last_n_days", "days": 1}) == set()  # seeded in 2025


def test_web_filters(sim: DevRevSimulator) -> None:
    scope = {"type": "web", "platform": "web", "version_key": SEED_WEB_VERSION_KEY}
    every = post(sim, LIST, scope).json()["sessions"]

    def ids(**filters: Any) -> set[str]:
        return {s["session_id"] for s in post(sim, LIST, {**scope, **filters}).json()["sessions"]}

    assert ids(has_console_errors=True) == {s["session_id"] for s in every if s["console_metadata"]["error"] > 0}
    assert ids(has_rage_clicks=True) == {s["session_id"] for s in every if s["rage_click_count"] > 0}
    assert SEED_WEB_SESSION_ID in ids(has_console_errors=True, has_rage_clicks=True, has_network_errors=True)
    assert ids(browser=["Safari"]) == {s["session_id"] for s in every if s["device_metadata"]["browser"] == "Safari"}
    fresh = sim.make_session("web")  # created now: inside a last-day preset
    sim.add_session(fresh, version_key=SEED_WEB_VERSION_KEY)
    assert ids(created_at={"type": "preset", "preset_type": "last_n_days", "days": 1}) == {fresh["session_id"]}


# -- awkward ids -------------------------------------------------------------------------------------

AWKWARD_IDS = [
    "ünïcödé-セッション-🚀",
    "with space",
    "100%",
    "%2F%20already-encoded",
    "a+b",
    "a&b=c",
    "path/like/id",
    "what?is=this",
    "hash#tag",
    " leading and trailing ",
    "all of %+&=/?# ü",
]


@pytest.mark.parametrize("session_id", AWKWARD_IDS)
def test_awkward_session_ids_round_trip(sim: DevRevSimulator, session_id: str) -> None:
    session = sim.add_session(sim.make_session("web", session_id=session_id), version_key="odd key@1/2")
    query = {"platform": "web", "session_id": session_id, "version_key": "odd key@1/2"}
    by_get = get(sim, **query)
    by_post = post(sim, GET, query)
    assert by_get.status_code == by_post.status_code == 200
    assert by_get.json()["session"] == by_post.json()["session"] == session
    listed = get(sim, LIST, platform="web", version_key="odd key@1/2").json()["sessions"]
    assert [s["session_id"] for s in listed] == [session_id]
    logged_get, logged_post, _ = sim.requests
    assert logged_get.query == query
    assert logged_get.session_id == logged_post.session_id == session_id
    assert get(sim, **{**query, "session_id": session_id + "x"}).status_code == 404


# -- raw HTTP framing --------------------------------------------------------------------------------


def raw_exchange(sim: DevRevSimulator, request: bytes) -> bytes:
    """Send bytes as they are and read until the server closes the connection."""
    with socket.create_connection(("127.0.0.1", sim.port), timeout=TIMEOUT) as conn:
        conn.sendall(request)
        received = b""
        while chunk := conn.recv(65536):
            received += chunk
    return received


@pytest.mark.parametrize(
    ("framing", "body"),
    [("Content-Length: twelve", b"{}"), ("Transfer-Encoding: chunked", b"zz\r\n{}\r\n0\r\n\r\n")],
    ids=["bad-content-length", "bad-chunk-size"],
)
def test_malformed_body_framing_is_a_bad_request(sim: DevRevSimulator, framing: str, body: bytes) -> None:
    head = f"POST {GET} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {sim.token}\r\n{framing}\r\n\r\n"
    answer = raw_exchange(sim, head.encode() + body)
    status_line, _, rest = answer.partition(b"\r\n")
    assert status_line == b"HTTP/1.1 400 Bad Request"
    headers, _, payload = rest.partition(b"\r\n\r\n")
    assert b"Connection: close" in headers
    assert json.loads(payload)["type"] == "bad_request"
    assert sim.requests[-1].status == 400


def test_head_and_connection_close(sim: DevRevSimulator) -> None:
    answer = raw_exchange(
        sim,
        f"HEAD {SELF} HTTP/1.1\r\nAuthorization: Bearer {sim.token}\r\nConnection: close\r\n\r\n".encode(),
    )
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 405 ")
    assert body == b""  # a HEAD answer has headers only
    answer = raw_exchange(sim, f"GET {SELF} HTTP/1.0\r\nAuthorization: Bearer {sim.token}\r\n\r\n".encode())
    assert answer.startswith(b"HTTP/1.1 200 OK")
    assert json.loads(answer.partition(b"\r\n\r\n")[2])["dev_user"]["id"] == "DEVU-1"
