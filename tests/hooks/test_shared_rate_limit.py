"""
One rate limit shared by every request on a connection in a process, against the simulator over real HTTP:
a 429 seen by one request pauses the others (sync threads of ``get_sessions``, triggers on an event loop), an
``X-Ratelimit-Remaining: 0`` pauses them before any 429, and a wait's deadline still holds while paused.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any

import pytest

from airflow_provider_devrev.exceptions import DevRevRateLimitError
from airflow_provider_devrev.hooks import _rate_gate
from airflow_provider_devrev.hooks.devrev import DevRevHook
from airflow_provider_devrev.testing import DevRevSimulator
from airflow_provider_devrev.triggers.devrev import DevRevSessionTrigger

GET = "/observability.sessions.get"
VK = "com.acme.shop@5.2.0"


def running(monkeypatch: pytest.MonkeyPatch, **kwargs: Any) -> DevRevSimulator:
    simulator = DevRevSimulator(seed_data=False, **kwargs).start()
    monkeypatch.setenv("AIRFLOW_CONN_DEVREV_DEFAULT", simulator.connection_json())
    return simulator


@pytest.fixture
def sim(monkeypatch):
    simulator = running(monkeypatch)
    yield simulator
    simulator.stop()


def add(sim: DevRevSimulator, count: int) -> list[str]:
    made = [sim.add_session(sim.make_session("mobile", platform="android"), version_key=VK) for _ in range(count)]
    return [session["session_id"] for session in made]


def trigger(session_id: str, *, end_time: float | None = None, **options: Any) -> DevRevSessionTrigger:
    return DevRevSessionTrigger(
        devrev_conn_id="devrev_default",
        platform="android",
        session_id=session_id,
        version_key=VK,
        poll_interval=0.2,
        end_time=end_time,
        hook_options=options,
    )


async def first_events(triggers: list[DevRevSessionTrigger]) -> list[dict[str, Any]]:
    async def one(t: DevRevSessionTrigger) -> dict[str, Any]:
        async for event in t.run():
            return dict(event.payload)
        raise AssertionError("no event")

    return list(await asyncio.gather(*(one(t) for t in triggers)))


def test_a_429_on_a_worker_thread_pauses_the_triggers_of_an_event_loop(sim):
    session_ids = add(sim, 20)
    sim.add_fault("rate_limit", retry_after=2.5, path=GET)
    with pytest.raises(DevRevRateLimitError):
        DevRevHook(max_retries=0).get_session("android", session_ids[0], VK)
    refused_at = sim.requests[-1].time

    events = asyncio.run(first_events([trigger(session_id) for session_id in session_ids]))

    assert [event["status"] for event in events] == ["success"] * 20
    later = sim.requests[1:]
    assert len(later) == 20, "each trigger sent once, after the pause"
    assert min(r.time for r in later) >= refused_at + 2.5


def test_a_429_in_a_trigger_pauses_every_thread_of_get_sessions(sim):
    session_ids = add(sim, 16)
    sim.add_fault("rate_limit", retry_after=0.8, path=GET)
    with pytest.raises(DevRevRateLimitError):
        # The call a trigger makes at each poll, on an event loop.
        asyncio.run(DevRevHook(max_retries=0).acall(_request(session_ids[0])))
    refused_at = sim.requests[0].time

    got = DevRevHook().get_sessions("android", VK, session_ids, max_concurrency=8)

    assert [s["session_id"] for s in got] == session_ids
    assert Counter(r.status for r in sim.requests) == {429: 1, 200: 16}
    assert min(r.time for r in sim.requests[1:]) >= refused_at + 0.8


def test_many_triggers_meet_no_429_once_the_window_is_known(monkeypatch):
    sim = running(monkeypatch, rate_limit=(5, 1.0))
    try:
        session_ids = add(sim, 30)
        # One answer tells the gate the window: 5 per second, 4 left.
        DevRevHook().get_session("android", session_ids[0], VK)

        events = asyncio.run(first_events([trigger(session_id) for session_id in session_ids]))
        statuses = Counter(r.status for r in sim.requests)
    finally:
        sim.stop()
    assert [event["status"] for event in events] == ["success"] * 30
    # 30 triggers polling at once against 5 a second: without the shared gate each would meet its own 429s.
    assert statuses == {200: 31}


def test_remaining_zero_pauses_before_a_429_is_ever_sent(monkeypatch):
    sim = running(monkeypatch, rate_limit=(3, 1.5))
    try:
        session_ids = add(sim, 6)
        hook = DevRevHook()
        got = [hook.get_session("android", session_id, VK) for session_id in session_ids]
        times = [r.time for r in sim.requests]
        statuses = Counter(r.status for r in sim.requests)
    finally:
        sim.stop()
    assert [s["session_id"] for s in got] == session_ids
    assert statuses == {200: 6}
    # The third answer said none remain: the fourth request waited for the next window.
    assert times[3] - times[0] >= 1.5


def test_a_triggers_deadline_fires_on_time_while_the_connection_is_paused(sim):
    (session_id,) = add(sim, 1)
    sim.add_fault("rate_limit", retry_after=30, path=GET)
    started = time.time()

    events = asyncio.run(first_events([trigger(session_id, end_time=started + 1.0)]))
    took = time.time() - started

    assert events[0]["error_type"] == "sensor_timeout"
    assert took < 3.0, "the 30 s pause must not carry the wait past its deadline"
    assert len(sim.requests) == 1, "nothing was sent while paused"


def test_a_sync_call_with_a_deadline_inside_the_pause_fails_at_once_sending_nothing(sim):
    (session_id,) = add(sim, 1)
    sim.add_fault("rate_limit", retry_after=30, path=GET)
    hook = DevRevHook(max_retries=0)
    with pytest.raises(DevRevRateLimitError):
        hook.get_session("android", session_id, VK)

    started = time.time()
    with pytest.raises(DevRevRateLimitError) as caught:
        DevRevHook().call(_request(session_id), deadline=started + 5)
    assert time.time() - started < 1.0
    assert caught.value.retry_after is not None
    assert caught.value.retry_after > 25
    assert len(sim.requests) == 1


def _request(session_id: str) -> Any:
    from airflow_provider_devrev.contract import get_session_request

    return get_session_request("android", session_id, VK)


def test_another_host_is_not_paused(sim, monkeypatch):
    (session_id,) = add(sim, 1)
    sim.add_fault("rate_limit", retry_after=30, path=GET)
    with pytest.raises(DevRevRateLimitError):
        DevRevHook(max_retries=0).get_session("android", session_id, VK)
    other = running(monkeypatch)
    try:
        (other_id,) = add(other, 1)
        started = time.time()
        assert DevRevHook().get_session("android", other_id, VK)["session_id"] == other_id
        assert time.time() - started < 5
    finally:
        other.stop()
    assert len(_rate_gate._GATES) == 2
