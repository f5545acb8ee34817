"""DevRevHook's recording and developer-info calls against the simulator over real HTTP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import io
import json
from typing import Any

import pytest

from airflow_provider_devrev.contract import get_session_recording_request
from airflow_provider_devrev.exceptions import (
    DevRevAuthError,
    DevRevBadRequestError,
    DevRevForbiddenError,
    DevRevInvalidInputError,
    DevRevNotFoundError,
    DevRevPayloadTooLargeError,
    DevRevRateLimitError,
    DevRevServerError,
    DevRevUnexpectedResponseError,
)
from airflow_provider_devrev.hooks._streaming import RecordingScanner
from airflow_provider_devrev.hooks.devrev import DevRevHook
from tests.fakes import FakeSleep

DATA = "/observability.sessions.data.get"
INFO = "/observability.sessions.developer-info.get"
VERSION = "com.example.app@1.0.0"
WEB_VERSION = "web.example@1.0.0"


@pytest.fixture
def sleep() -> FakeSleep:
    return FakeSleep()


@pytest.fixture
def sim(devrev_simulator):
    return devrev_simulator


@pytest.fixture
def hook(sim, sleep) -> DevRevHook:
    return DevRevHook(sleep=sleep, async_sleep=sleep.async_sleep, max_retries=3)


@pytest.fixture
def crash(sim) -> dict[str, Any]:
    session = sim.make_session("mobile", platform="android", is_crash=True, is_anr=False, recording_ids=["r1", "r2"])
    return sim.add_session(session, version_key=VERSION)


@pytest.fixture
def web(sim) -> dict[str, Any]:
    session = sim.make_session("web", tab_ids=["tab-1", "tab-2"], console_metadata={"error": 3})
    return sim.add_session(session, version_key=WEB_VERSION)


def _stream(hook: DevRevHook, *args: Any, **kwargs: Any) -> dict[str, Any]:
    """The streaming form, returning what it wrote parsed, so all three forms compare alike."""
    sink = io.BytesIO()
    streamed = hook.stream_session_recording(*args[:2], sink.write, **kwargs)
    body: dict[str, Any] = json.loads(sink.getvalue())
    assert streamed.bytes == len(sink.getvalue())
    assert streamed.recording == body["recording"]
    return body


FORMS = {
    "get": lambda hook, *a, **k: hook.get_session_recording(*a, **k),
    "aget": lambda hook, *a, **k: asyncio.run(hook.aget_session_recording(*a, **k)),
    "stream": _stream,
}


@pytest.fixture(params=sorted(FORMS))
def fetch(request, hook):
    def call(*args: Any, **kwargs: Any) -> dict[str, Any]:
        return FORMS[request.param](hook, *args, **kwargs)

    return call


def test_a_crash_recording_ends_with_the_crash(sim, fetch, crash):
    got = fetch(crash["session_id"], VERSION, recording_id="r2")

    assert got == sim.recording(crash["session_id"], VERSION, recording_id="r2")
    assert got["recording"] == "mobile_recording"
    assert got["recording_id"] == "r2"
    log = got["observability_sessions_log_data"]
    assert log["is_crash"] is True
    assert log["value"].startswith("FATAL EXCEPTION: main")
    last = got["recording_events_timeline"][-1]
    assert last["event_name"] == "exception"
    assert last["exception_class_name"] in log["value"]
    [request] = sim.requests_for(path=DATA)
    assert (request.method, request.query) == (
        "GET",
        {"session_id": crash["session_id"], "version_key": VERSION, "recording_id": "r2"},
    )


def test_a_web_tab_by_tab_id(sim, fetch, web):
    got = fetch(web["session_id"], WEB_VERSION, tab_id="tab-2")

    assert got == sim.recording(web["session_id"], WEB_VERSION, tab_id="tab-2")
    assert got["recording"] == "web_recording"
    assert got["timeline_data"]["events"][-1]["event_type"] == "recording_stopped"
    assert sim.requests_for(path=DATA)[0].query["tab_id"] == "tab-2"


def test_ids_too_long_for_a_url_go_in_the_post_form(sim, hook):
    session = sim.make_session("mobile", platform="ios", session_id="s" * 3000, recording_ids=["r" * 2000])
    sim.add_session(session, version_key=VERSION)

    got = hook.get_session_recording("s" * 3000, VERSION, recording_id="r" * 2000)

    assert got["recording_id"] == "r" * 2000
    [request] = sim.requests_for(path=DATA)
    assert request.method == "POST"
    assert request.body == {"session_id": "s" * 3000, "version_key": VERSION, "recording_id": "r" * 2000}


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({}, "recording_id"),
        ({"recording_id": "r1", "tab_id": "tab-1"}, "tab_id"),
        ({"recording_id": ""}, "recording_id"),
        ({"tab_id": "  "}, "tab_id"),
        ({"recording_id": 7}, "recording_id"),
    ],
)
def test_exactly_one_usable_id_is_checked_before_any_request(sim, fetch, crash, kwargs, field):
    with pytest.raises(DevRevInvalidInputError) as raised:
        fetch(crash["session_id"], VERSION, **kwargs)

    assert raised.value.field_name == field
    assert field in str(raised.value)
    assert sim.requests == []


def test_an_empty_session_id_is_refused_before_any_request(sim, fetch):
    with pytest.raises(DevRevInvalidInputError, match="session_id"):
        fetch("", VERSION, recording_id="r1")
    assert sim.requests == []


@pytest.mark.parametrize(
    "ids",
    [
        {"recording_id": "no-such-recording"},
        {"tab_id": "r1"},  # a mobile session has no tabs
    ],
)
def test_an_unknown_recording_is_not_found_after_one_request(sim, fetch, crash, ids):
    with pytest.raises(DevRevNotFoundError, match="not found"):
        fetch(crash["session_id"], VERSION, **ids)
    assert len(sim.requests_for(path=DATA)) == 1


def test_an_unknown_session_is_not_found(sim, fetch):
    with pytest.raises(DevRevNotFoundError):
        fetch("no-such-session", VERSION, recording_id="r1")
    assert len(sim.requests_for(path=DATA)) == 1


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        ({"kind": "revoked"}, DevRevAuthError),
        ({"kind": "status", "status": 403, "body": {"type": "forbidden"}}, DevRevForbiddenError),
        ({"kind": "status", "status": 400, "body": {"type": "bad_request"}}, DevRevBadRequestError),
        ({"kind": "status", "status": 413, "body": {"type": "request_entity_too_large"}}, DevRevPayloadTooLargeError),
        ({"kind": "truncated_json"}, DevRevUnexpectedResponseError),
        ({"kind": "non_json", "status": 200}, DevRevUnexpectedResponseError),
    ],
)
def test_final_errors_are_typed_and_sent_once(sim, fetch, crash, fault, error):
    params = dict(fault)
    sim.add_fault(params.pop("kind"), **params)

    with pytest.raises(error):
        fetch(crash["session_id"], VERSION, recording_id="r1")
    assert len(sim.requests_for(path=DATA)) == 1


def test_429_and_5xx_and_timeouts_are_retried_after_a_wait(sim, fetch, crash, sleep, monkeypatch):
    sim.add_fault("rate_limit", retry_after=7)
    sim.add_fault("server_error", status=503)
    sim.add_fault("drop")

    got = fetch(crash["session_id"], VERSION, recording_id="r1")

    assert got["recording_id"] == "r1"
    assert len(sim.requests_for(path=DATA)) == 4
    assert len(sleep.waits) == 3
    assert sleep.waits[0] >= 7  # the Retry-After is a minimum


def test_a_read_timeout_is_retried(sim, sleep, crash):
    hook = DevRevHook(sleep=sleep, timeout=0.3, max_retries=2)
    sim.add_fault("slow", delay=1.5)

    assert hook.get_session_recording(crash["session_id"], VERSION, recording_id="r1")["recording_id"] == "r1"
    assert len(sim.requests_for(path=DATA)) == 2


def test_persistent_5xx_fail_after_the_retries(sim, fetch, crash):
    sim.add_fault("server_error", status=500, reference_id="ref-rec", times=None)

    with pytest.raises(DevRevServerError, match="ref-rec"):
        fetch(crash["session_id"], VERSION, recording_id="r1")
    assert len(sim.requests_for(path=DATA)) == 4  # 1 + max_retries


def test_a_retry_after_beyond_max_retry_wait_fails_at_once(sim, sleep, crash):
    hook = DevRevHook(sleep=sleep, max_retry_wait=60)
    sim.add_fault("rate_limit", retry_after=3600)

    with pytest.raises(DevRevRateLimitError, match="3600"):
        hook.get_session_recording(crash["session_id"], VERSION, recording_id="r1")
    assert len(sim.requests_for(path=DATA)) == 1
    assert sleep.waits == []


def test_unknown_fields_are_kept_as_they_come(sim, fetch, crash):
    body = {
        "recording": "mobile_recording",
        "recording_id": "r1",
        "session_id": crash["session_id"],
        "future_field": {"nested": [1, 2]},
    }
    sim.add_fault("status", status=200, body=body)

    assert fetch(crash["session_id"], VERSION, recording_id="r1") == body


def test_a_200_without_a_recording_kind_is_unexpected(sim, fetch, crash):
    sim.add_fault("status", status=200, body={"recording_id": "r1"})

    with pytest.raises(DevRevUnexpectedResponseError, match="recording"):
        fetch(crash["session_id"], VERSION, recording_id="r1")


# -- streaming: what happens once bytes have been written --------------------------------------------------


def test_a_body_cut_mid_stream_is_a_final_error(sim, hook, crash):
    sim.inflate_recording(crash["session_id"], 3_000_000)
    sim.add_fault("cut_body", after_bytes=1_000_000)
    sink = io.BytesIO()

    with pytest.raises(DevRevUnexpectedResponseError) as raised:
        hook.stream_session_recording(crash["session_id"], VERSION, sink.write, recording_id="r2")

    assert raised.value.error_type == "incomplete_body"
    assert "cut after" in str(raised.value)
    assert 0 < len(sink.getvalue()) <= 1_000_000
    assert len(sim.requests_for(path=DATA)) == 1, "bytes were written: no retry"


def test_a_body_cut_before_its_first_chunk_is_retried(sim, hook, crash):
    sim.add_fault("cut_body", after_bytes=100)
    sink = io.BytesIO()

    streamed = hook.stream_session_recording(crash["session_id"], VERSION, sink.write, recording_id="r2")

    assert sink.getvalue() == b"".join(sim.recording_chunks(crash["session_id"], VERSION, recording_id="r2"))
    assert streamed.bytes == len(sink.getvalue())
    assert len(sim.requests_for(path=DATA)) == 2


def test_a_large_recording_streams_in_chunks_equal_to_the_simulators(sim, hook, crash):
    sim.inflate_recording(crash["session_id"], 5_000_000)
    chunks: list[int] = []
    digest = io.BytesIO()

    def write(chunk: bytes) -> None:
        chunks.append(len(chunk))
        digest.write(chunk)

    streamed = hook.stream_session_recording(crash["session_id"], VERSION, write, recording_id="r2")

    expected = b"".join(sim.recording_chunks(crash["session_id"], VERSION, recording_id="r2"))
    assert len(expected) >= 5_000_000
    assert digest.getvalue() == expected
    assert streamed.bytes == len(expected)
    assert max(chunks) <= 1 << 16
    assert json.loads(expected)["recording_events_timeline"][-1]["event_name"] == "exception"


@pytest.mark.parametrize("shape", ["crash_log", "tiny_events"])
def test_a_recording_grown_in_either_shape_streams_whole_and_still_ends_in_the_crash(sim, hook, crash, shape):
    sim.inflate_recording(crash["session_id"], 3_000_000, shape=shape)
    sink = io.BytesIO()

    streamed = hook.stream_session_recording(crash["session_id"], VERSION, sink.write, recording_id="r2")

    expected = b"".join(sim.recording_chunks(crash["session_id"], VERSION, recording_id="r2"))
    assert sink.getvalue() == expected
    assert streamed.recording == "mobile_recording"
    recording = json.loads(expected)
    log = recording["observability_sessions_log_data"]["value"]
    frames = [event for event in recording["recording_events_timeline"] if event["event_name"] == "frame"]
    assert recording["recording_events_timeline"][-1]["event_name"] == "exception"
    assert log.startswith("FATAL EXCEPTION: main")
    if shape == "crash_log":  # one string of (escapes aside) the whole body
        assert len(json.dumps(log)) >= 3_000_000
        assert frames == []
    else:
        assert len(log) < 10_000
        assert len(frames) * 56 >= 3_000_000
        assert frames[:2] == [{"event_name": "frame", "timestamp_offset_ms": t} for t in (0, 16)]


def test_an_unknown_shape_is_refused(sim, crash):
    with pytest.raises(ValueError, match="crash_log"):
        sim.inflate_recording(crash["session_id"], 3_000_000, shape="wide")


@pytest.mark.parametrize(
    "body",
    [
        b'{"recording": "mobile_recording", "log": "\xed\xa0\x80"}',  # a surrogate encoded: not UTF-8
        b'{"recording": "mobile_recording", "ram": NaN}',
    ],
)
def test_a_body_that_is_not_utf8_json_is_refused_as_not_complete_json(body):
    scanner = RecordingScanner(get_session_recording_request("s-1", VERSION, recording_id="r1"))

    with pytest.raises(DevRevUnexpectedResponseError, match="not complete JSON"):  # noqa: PT012 (either may raise)
        scanner.feed(body)
        scanner.finish()


def test_an_error_from_the_writer_ends_the_call_as_it_is(sim, hook, crash):
    class Full(Exception):
        pass

    def write(chunk: bytes) -> None:
        raise Full

    with pytest.raises(Full):
        hook.stream_session_recording(crash["session_id"], VERSION, write, recording_id="r1")
    assert len(sim.requests_for(path=DATA)) == 1


# -- developer info --------------------------------------------------------------------------------------


def test_developer_info_is_a_post_with_console_errors_and_failed_calls(sim, hook, web):
    got = hook.get_session_developer_info(web["session_id"], WEB_VERSION, "tab-1")

    assert got == sim.developer_info(web["session_id"], WEB_VERSION, "tab-1")
    errors = [item for item in got["console_data"] if item["type"] == "error"]
    assert len(errors) == 3
    assert all("\n    at " in item["value"] for item in errors)
    [request] = sim.requests_for(path=INFO)
    assert request.method == "POST"
    assert request.body == {"session_id": web["session_id"], "version_key": WEB_VERSION, "tab_id": "tab-1"}


def test_developer_info_keeps_unknown_item_fields(sim, hook, web):
    body = {
        "console_data": [{"type": "error", "value": "x", "source_map": {"line": 3}}],
        "network_data": [{"type": "fetch", "request": {"method": "GET", "body_size": 12}, "timing": {"ttfb": 4}}],
        "new_section": [],
    }
    sim.add_fault("status", status=200, body=body)

    assert hook.get_session_developer_info(web["session_id"], WEB_VERSION, "tab-1") == body


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (("", WEB_VERSION, "tab-1"), "session_id"),
        (("s", "", "tab-1"), "version_key"),
        (("s", WEB_VERSION, None), "tab_id"),
    ],
)
def test_developer_info_arguments_are_checked_before_any_request(sim, hook, args, field):
    with pytest.raises(DevRevInvalidInputError, match=field):
        hook.get_session_developer_info(*args)
    assert sim.requests == []


@pytest.mark.parametrize("tab_id", ["tab-9", None])
def test_developer_info_of_an_unknown_session_or_tab_is_a_bad_request(sim, hook, web, tab_id):
    # The contract gives developer-info.get no 404; the simulator answers 400 invalid_id.
    session_id = web["session_id"] if tab_id else "no-such-session"
    with pytest.raises(DevRevBadRequestError) as raised:
        hook.get_session_developer_info(session_id, WEB_VERSION, tab_id or "tab-1")
    assert raised.value.error_type == "invalid_id"
    assert len(sim.requests_for(path=INFO)) == 1


def test_developer_info_is_retried_like_every_call(sim, hook, web, sleep):
    sim.add_fault("rate_limit", retry_after=2)
    sim.add_fault("server_error", status=502)

    got = hook.get_session_developer_info(web["session_id"], WEB_VERSION, "tab-1")

    assert "console_data" in got
    assert len(sim.requests_for(path=INFO)) == 3
    assert len(sleep.waits) == 2
