"""
A 401 whose body is not DevRev's error JSON (an empty body, a gateway's HTML login page) is still a 401: it is a
:class:`DevRevAuthError` and re-reads the connection once, exactly like DevRev's own 401, in every path that
sends (a call, a streamed recording, a listing, ``acall``, the session trigger) and in both transports. Against
the simulator over real HTTP on 127.0.0.1; its ``non_json`` fault answers before the token is looked at, as a
gateway in front of DevRev would.
"""

from __future__ import annotations

import asyncio
import io
import json
import secrets
from collections.abc import Callable
from typing import Any

import pytest

from airflow_provider_devrev.exceptions import DevRevAuthError
from airflow_provider_devrev.hooks.devrev import DevRevHook
from airflow_provider_devrev.listing import session_query
from airflow_provider_devrev.triggers.devrev import DevRevSessionTrigger, session_from_event
from tests.fakes import FakeClock, FakeSleep

VERSION = "com.example.app@1.0.0"
TOKEN = "tk" + secrets.token_hex(24)
NEW_TOKEN = "tk" + secrets.token_hex(24)
GATEWAY_PAGE = (
    "<html><head><title>401 Authorization Required</title></head>"
    "<body><center><h1>401 Authorization Required</h1></center><hr><center>nginx</center></body></html>"
)
#: The bodies a 401 that is not DevRev's arrives with, and what its message quotes of each.
BODIES = {"empty body": ("", "(empty body)"), "HTML page": (GATEWAY_PAGE, "401 Authorization Required")}

pytestmark = pytest.mark.devrev_simulator(token=TOKEN)


def connect(monkeypatch, sim, password: str) -> None:
    conn = {"conn_type": "devrev", "host": sim.url, "password": password}
    monkeypatch.setenv("AIRFLOW_CONN_DEVREV_DEFAULT", json.dumps(conn))


@pytest.fixture
def sim(devrev_simulator, monkeypatch):
    connect(monkeypatch, devrev_simulator, TOKEN)
    return devrev_simulator


@pytest.fixture
def crash(sim) -> dict[str, Any]:
    session = sim.make_session("mobile", platform="android", is_crash=True, recording_ids=["r1"])
    return sim.add_session(session, version_key=VERSION)


@pytest.fixture
def lookups(monkeypatch) -> list[str]:
    """Every connection lookup, by either transport (the sync one and the async one)."""
    from airflow_provider_devrev.hooks import _credentials

    seen: list[str] = []
    original, real_lookup = DevRevHook.get_connection, _credentials._lookup
    in_async_lookup = [0]  # which, before Airflow 3.3.2, calls get_connection in a thread: counted once

    def counting(conn_id):
        if not in_async_lookup[0]:
            seen.append(conn_id)
        return original(conn_id)

    async def counting_lookup(conn_id, hook_class):
        seen.append(conn_id)
        in_async_lookup[0] += 1
        try:
            return await real_lookup(conn_id, hook_class)
        finally:
            in_async_lookup[0] -= 1

    monkeypatch.setattr(DevRevHook, "get_connection", staticmethod(counting))
    monkeypatch.setattr(_credentials, "_lookup", counting_lookup)
    return seen


def run_trigger(session: dict[str, Any], monkeypatch) -> Any:
    """The deferrable sensor's trigger, to its one event, with its clock faked; the event read as a worker does."""
    clock = FakeClock(start=1_000_000.0)
    monkeypatch.setattr(DevRevSessionTrigger, "clock", staticmethod(clock.time))
    monkeypatch.setattr(DevRevSessionTrigger, "sleep", staticmethod(clock.async_sleep))
    trigger = DevRevSessionTrigger(
        devrev_conn_id="devrev_default",
        platform="android",
        session_id=session["session_id"],
        version_key=VERSION,
        poll_interval=30,
    )

    async def events():
        return [event.payload async for event in trigger.run()]

    [event] = asyncio.run(events())
    return session_from_event(event)


def stream(hook: DevRevHook, session: dict[str, Any]) -> Any:
    sink = io.BytesIO()
    hook.stream_session_recording(session["session_id"], VERSION, sink.write, recording_id="r1")
    return json.loads(sink.getvalue())["recording"]


def listed(hook: DevRevHook, session: dict[str, Any]) -> Any:
    return [s["session_id"] for s in hook.iter_sessions("android", VERSION)]


def alisted(hook: DevRevHook, session: dict[str, Any]) -> Any:
    async def collect():
        return [s["session_id"] async for s in hook.aiter_sessions(session_query("android", VERSION))]

    return asyncio.run(collect())


#: Every way a hook sends, sync (requests) and async (aiohttp); each returns what a success brought back.
PATHS: dict[str, Callable[..., Any]] = {
    "call (requests)": lambda hook, s, mp: hook.get_session("android", s["session_id"], VERSION),
    "streamed recording (requests)": lambda hook, s, mp: stream(hook, s),
    "listing (requests)": lambda hook, s, mp: listed(hook, s),
    "acall (aiohttp)": lambda hook, s, mp: asyncio.run(hook.aget_session("android", s["session_id"], VERSION)),
    "listing (aiohttp)": lambda hook, s, mp: alisted(hook, s),
    "session trigger (aiohttp)": lambda hook, s, mp: run_trigger(s, mp),
}


@pytest.mark.parametrize("body", list(BODIES))
@pytest.mark.parametrize("path", list(PATHS))
def test_a_401_without_devrevs_body_rereads_the_rotated_connection_and_resends_once(
    sim, crash, monkeypatch, lookups, path, body
):
    sim.add_fault("non_json", status=401, body=BODIES[body][0])

    def rotate() -> None:
        sim.rotate_token(NEW_TOKEN)
        connect(monkeypatch, sim, NEW_TOKEN)

    sim.at_request(1, rotate)
    sleep = FakeSleep()

    got = PATHS[path](DevRevHook(sleep=sleep, async_sleep=sleep.async_sleep), crash, monkeypatch)

    assert got, "the resent request succeeded"
    assert [(r.token, r.status) for r in sim.requests] == [(1, 401), (2, 200)]
    assert lookups == ["devrev_default", "devrev_default"], "one lookup at first use, one after the 401"
    assert sleep.waits == [], "the new token is used at once, not after a retry wait"


@pytest.mark.parametrize("body", list(BODIES))
@pytest.mark.parametrize("path", list(PATHS))
def test_a_401_without_devrevs_body_and_an_unchanged_connection_is_a_final_auth_error(
    sim, crash, monkeypatch, lookups, path, body
):
    sim.add_fault("non_json", status=401, body=BODIES[body][0], times=None)
    sleep = FakeSleep()

    with pytest.raises(DevRevAuthError) as caught:
        PATHS[path](DevRevHook(sleep=sleep, async_sleep=sleep.async_sleep), crash, monkeypatch)

    error = caught.value
    assert error.status_code == 401
    assert "not a DevRev error" in str(error)
    assert BODIES[body][1] in str(error), "a short excerpt of what answered"
    assert len(str(error)) < 400
    assert len(sim.requests) == 1, "no resend: the connection did not change"
    assert lookups == ["devrev_default", "devrev_default"], "read again once, after the 401"
    assert sleep.waits == []
    assert TOKEN not in repr(error) + str(error)


def test_a_401_with_json_that_is_not_devrevs_keeps_its_fields_in_the_excerpt(sim, lookups):
    sim.add_fault("non_json", status=401, body='{"error": "invalid_token"}', content_type="application/json")

    with pytest.raises(DevRevAuthError, match="invalid_token"):
        DevRevHook(sleep=FakeSleep()).get_session("android", "s-1", VERSION)

    assert len(lookups) == 2
