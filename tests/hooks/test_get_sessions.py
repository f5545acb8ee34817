"""DevRevHook.get_sessions (bounded, rate-limit-aware concurrent fetches) and its AdaptiveLimit."""

from __future__ import annotations

import math
import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from airflow_provider_devrev.exceptions import (
    DevRevBadRequestError,
    DevRevForbiddenError,
    DevRevInvalidInputError,
    DevRevNotFoundError,
    DevRevRateLimitError,
)
from airflow_provider_devrev.hooks._bulk import AdaptiveLimit
from airflow_provider_devrev.hooks.devrev import DevRevHook
from airflow_provider_devrev.testing import DevRevSimulator
from tests.fakes import FakeSleep

GET = "/observability.sessions.get"
VK = "com.acme.shop@5.2.0"


@pytest.fixture
def sleep() -> FakeSleep:
    return FakeSleep()


def running(monkeypatch: pytest.MonkeyPatch, **kwargs: Any) -> DevRevSimulator:
    simulator = DevRevSimulator(seed_data=False, **kwargs).start()
    monkeypatch.setenv("AIRFLOW_CONN_DEVREV_DEFAULT", simulator.connection_json())
    return simulator


@pytest.fixture
def sim(monkeypatch) -> Iterator[DevRevSimulator]:
    simulator = running(monkeypatch)
    try:
        yield simulator
    finally:
        simulator.stop()


@pytest.fixture
def hook(sim, sleep) -> DevRevHook:
    return DevRevHook(sleep=sleep)


def add(sim: DevRevSimulator, count: int, platform: str = "android") -> list[dict[str, Any]]:
    kind = "web" if platform == "web" else "mobile"
    return [sim.add_session(sim.make_session(kind, platform=platform), version_key=VK) for _ in range(count)]


def ids(sessions: list[dict[str, Any]]) -> list[str]:
    return [session["session_id"] for session in sessions]


def get_requests(sim: DevRevSimulator) -> list[Any]:
    return sim.requests_for(path=GET)


# -- results -----------------------------------------------------------------------------------------


def test_returns_sessions_in_input_order_once_each(sim, hook):
    sessions = add(sim, 12)
    by_id = {s["session_id"]: s for s in sessions}
    order = [ids(sessions)[i] for i in (5, 0, 5, 11, 3, 0, 7, 1, 11, 2, 4, 6, 8, 9, 10, 5)]

    got = hook.get_sessions("android", VK, order, max_concurrency=4)

    unique = list(dict.fromkeys(order))
    assert got == [by_id[session_id] for session_id in unique]
    assert len(unique) == 12
    assert Counter(r.session_id for r in get_requests(sim)) == Counter(unique)  # each fetched once
    assert all(r.status == 200 and r.method == "GET" for r in get_requests(sim))


def test_any_iterable_of_ids(sim, hook):
    sessions = add(sim, 5, platform="web")

    got = hook.get_sessions("web", VK, (s["session_id"] for s in reversed(sessions)))

    assert got == sessions[::-1]


def test_skip_missing_leaves_out_404s(sim, hook, sleep):
    sessions = add(sim, 6, platform="ios")
    order = ["missing-1", *ids(sessions[:3]), "missing-2", *ids(sessions[3:])]

    got = hook.get_sessions("ios", VK, order, skip_missing=True)

    assert got == sessions
    assert sorted(r.status for r in get_requests(sim)) == [200] * 6 + [404] * 2
    assert len(get_requests(sim)) == 8  # a 404 is final: not retried
    assert sleep.waits == []


def test_missing_session_raises_not_found_by_default(sim, hook):
    sessions = add(sim, 3)

    with pytest.raises(DevRevNotFoundError) as caught:
        hook.get_sessions("android", VK, [*ids(sessions), "no-such-session"])

    assert caught.value.status_code == 404


def test_no_ids_no_requests(sim, hook):
    assert hook.get_sessions("android", VK, []) == []
    assert hook.get_sessions("android", VK, iter(())) == []
    assert sim.requests == []


def test_connection_is_read_once_for_all_workers(sim, sleep, monkeypatch):
    sessions = add(sim, 16)
    lookups = []
    original = DevRevHook.get_connection

    def counting(conn_id):
        lookups.append(conn_id)
        return original(conn_id)

    monkeypatch.setattr(DevRevHook, "get_connection", staticmethod(counting))

    assert DevRevHook(sleep=sleep).get_sessions("android", VK, ids(sessions), max_concurrency=8) == sessions
    assert lookups == ["devrev_default"]


BAD_CALLS = [
    ({"max_concurrency": 0}, "max_concurrency"),
    ({"max_concurrency": 65}, "max_concurrency"),
    ({"max_concurrency": True}, "max_concurrency"),
    ({"max_concurrency": 4.0}, "max_concurrency"),
    ({"max_concurrency": "8"}, "max_concurrency"),
    ({"max_concurrency": None}, "max_concurrency"),
    ({"session_ids": "sim-android-crash-0001"}, "session_ids"),
    ({"session_ids": ["ok-1", ""]}, "session_id"),
    ({"session_ids": ["ok-1", "  "]}, "session_id"),
    ({"session_ids": ["ok-1", None]}, "session_id"),
    ({"session_ids": ["ok-1", 42]}, "session_id"),
    ({"platform": "windows"}, "platform"),
    ({"version_key": ""}, "version_key"),
]


@pytest.mark.parametrize(
    ("overrides", "field"),
    BAD_CALLS,
    ids=[f"{field}-{value!r}" for overrides, field in BAD_CALLS for value in overrides.values()],
)
def test_bad_inputs_raise_before_any_request(sim, hook, overrides, field):
    sessions = add(sim, 2)
    kwargs: dict[str, Any] = {
        "platform": "android",
        "version_key": VK,
        "session_ids": ids(sessions),
        "max_concurrency": 8,
        **overrides,
    }

    with pytest.raises(DevRevInvalidInputError) as caught:
        hook.get_sessions(kwargs.pop("platform"), kwargs.pop("version_key"), kwargs.pop("session_ids"), **kwargs)

    assert caught.value.field_name == field
    assert sim.requests == []


@pytest.mark.parametrize("max_concurrency", [1, 64])
def test_concurrency_bounds_are_inclusive(sim, hook, max_concurrency):
    sessions = add(sim, 3)

    assert hook.get_sessions("android", VK, ids(sessions), max_concurrency=max_concurrency) == sessions


# -- concurrency -------------------------------------------------------------------------------------


def test_never_more_in_flight_than_max_concurrency(sim, hook):
    sessions = add(sim, 40)
    sim.add_fault("slow", path=GET, times=None, delay=0.05)  # every answer takes a moment

    got = hook.get_sessions("android", VK, ids(sessions), max_concurrency=4)

    assert got == sessions
    assert 2 <= sim.peak_concurrency <= 4
    assert len(get_requests(sim)) == 40


def test_uses_the_concurrency_it_is_given(sim, hook):
    sessions = add(sim, 16)
    sim.add_fault("slow", path=GET, times=None, delay=0.2)

    got = hook.get_sessions("android", VK, ids(sessions), max_concurrency=8)

    assert got == sessions
    assert 4 < sim.peak_concurrency <= 8


def test_backs_off_on_429_and_does_not_fail(monkeypatch, sleep):
    per, max_concurrency = 0.5, 8
    sim = running(monkeypatch, rate_limit=(10, per))
    try:
        sessions = add(sim, 60)
        # No retries inside a call: a client that did not pace itself on 429 would fail at the first one.
        hook = DevRevHook(sleep=sleep, max_retries=0)

        got = hook.get_sessions("android", VK, ids(sessions), max_concurrency=max_concurrency)

        made = get_requests(sim)
        peak = sim.peak_concurrency
    finally:
        sim.stop()

    assert got == sessions
    statuses = Counter(r.status for r in made)
    assert set(statuses) == {200, 429}
    assert statuses[200] == 60
    assert statuses[429] >= 1, "60 requests at 10 per 0.5 s must meet the rate limit"
    # The simulator's windows are fixed: each starts at a request at least `per` after the previous one
    # started. So the requests span at most this many windows (one more for the window open at the start).
    times = [r.time for r in made]
    windows = math.floor((max(times) - min(times)) / per) + 2
    # A client that honours Retry-After stops sending in a window once it is told 429: only the requests
    # already in flight (at most max_concurrency) can still meet the 429 there. One that retried at once
    # would collect hundreds.
    assert statuses[429] <= windows * max_concurrency, (statuses, windows)
    assert peak <= max_concurrency
    # No retry inside a call (max_retries=0): the only waits are the connection's shared pauses, each until
    # the window reopens (X-Ratelimit-Reset is in whole seconds, hence up to a second more).
    assert all(0 < wait <= per + 1 for wait in sleep.waits), sleep.waits


def test_retry_after_beyond_max_retry_wait_fails_at_once(sim, sleep):
    sessions = add(sim, 4)
    sim.add_fault("rate_limit", session_id=sessions[2]["session_id"], retry_after=3_600)

    with pytest.raises(DevRevRateLimitError) as caught:
        DevRevHook(sleep=sleep, max_retry_wait=5).get_sessions("android", VK, ids(sessions), max_concurrency=2)

    assert caught.value.retry_after == 3_600
    assert "3600" in str(caught.value)
    assert len(sim.requests_for(path=GET, session_id=sessions[2]["session_id"])) == 1


def test_transient_error_on_one_id_is_retried_like_get_session(sim, hook, sleep):
    sessions = add(sim, 6)
    flaky = sessions[2]["session_id"]
    sim.add_fault("server_error", status=503, session_id=flaky)

    got = hook.get_sessions("android", VK, ids(sessions), max_concurrency=3)

    assert got == sessions
    assert [r.status for r in sim.requests_for(path=GET, session_id=flaky)] == [503, 200]
    assert len(sleep.waits) == 1


def test_final_error_raises_and_stops_sending(sim, hook):
    sessions = add(sim, 40)
    forbidden = sessions[3]["session_id"]
    sim.add_fault("status", session_id=forbidden, status=403, body={"type": "forbidden", "message": "nope"})
    sim.add_fault("slow", path=GET, times=None, delay=0.05)  # the others take a moment

    with pytest.raises(DevRevForbiddenError) as caught:
        hook.get_sessions("android", VK, ids(sessions), max_concurrency=2)

    assert caught.value.status_code == 403
    assert caught.value.error_type == "forbidden"
    assert len(sim.requests_for(path=GET, session_id=forbidden)) == 1  # final: not retried
    assert len(get_requests(sim)) < len(sessions)  # the requests not yet sent were never sent


def test_a_final_error_stops_workers_that_wait_out_a_rate_limit(sim, hook):
    sessions = add(sim, 4)
    # The refused one first, so its worker takes a slot before any 429 can start a pause.
    refused, limited = sessions[0]["session_id"], ids(sessions)[1:]
    for session_id in limited:  # always 429: without the stop, each would be asked for again after 2 s
        sim.add_fault("rate_limit", session_id=session_id, times=None, retry_after=2)
    sim.add_fault("status", session_id=refused, status=400, body={"type": "bad_request", "message": "no"})

    with pytest.raises(DevRevBadRequestError):
        hook.get_sessions("android", VK, ids(sessions), max_concurrency=4)

    # Each asked for once at most: none again after its 429's pause (one may never have been sent at all).
    assert max(len(sim.requests_for(path=GET, session_id=session_id)) for session_id in limited) <= 1


def test_an_interrupted_caller_sends_nothing_more(sim, hook, monkeypatch):
    """A task timeout raises in the calling thread while workers run: the queue must not be sent after it."""
    from airflow_provider_devrev.hooks import _bulk

    sessions = add(sim, 40)
    sim.add_fault("slow", path=GET, times=None, delay=0.05)

    def interrupted(futures, return_when):
        raise KeyboardInterrupt  # what a timeout or a signal does to the caller

    monkeypatch.setattr(_bulk, "wait", interrupted)
    with pytest.raises(KeyboardInterrupt):
        hook.get_sessions("android", VK, ids(sessions), max_concurrency=2)

    assert len(get_requests(sim)) <= 2 + 2  # at most the two on the wire, and the two their workers had taken


# -- AdaptiveLimit -----------------------------------------------------------------------------------


class Clock:
    """A fake monotonic clock that counts how often it is read, so a test can tell a waiter has looked."""

    def __init__(self, now: float = 100.0) -> None:
        self.now = now
        self.reads = 0
        self._cond = threading.Condition()

    def __call__(self) -> float:
        with self._cond:
            self.reads += 1
            self._cond.notify_all()
            return self.now

    def wait_reads(self, count: int) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self.reads >= count, timeout=10)


def succeed(limit: AdaptiveLimit, times: int) -> None:
    for _ in range(times):
        limit.acquire()
        limit.release()


def rate_limited(limit: AdaptiveLimit, wait: float) -> None:
    limit.acquire()
    limit.release(rate_limited_for=wait)


def test_limit_halves_on_429_down_to_one():
    limit = AdaptiveLimit(8, clock=Clock())

    seen = []
    for _ in range(5):
        rate_limited(limit, 0.0)
        seen.append(limit.limit)

    assert seen == [4, 2, 1, 1, 1]
    assert limit.in_flight == 0
    assert AdaptiveLimit(5, clock=Clock()).limit == 5


def test_the_429s_of_one_pause_halve_the_limit_once():
    clock = Clock(100.0)
    limit = AdaptiveLimit(32, clock=clock)
    for _ in range(32):
        limit.acquire()

    for _ in range(32):  # the whole burst in flight when the window ran out
        limit.release(rate_limited_for=1.0)

    assert limit.limit == 16
    clock.now = 101.0  # the next window: a new 429 is a new signal
    limit.acquire()
    limit.release(rate_limited_for=1.0)
    assert limit.limit == 8


def test_pause_runs_from_the_429_for_the_wait_asked():
    clock = Clock(100.0)
    limit = AdaptiveLimit(8, clock=clock)

    rate_limited(limit, 5.0)
    assert limit.paused_until == 105.0
    clock.now = 105.0
    limit.acquire()  # the pause is over: this does not block (a paused acquire is tested with a thread below)
    assert limit.in_flight == 1


def test_a_shorter_wait_does_not_cut_a_pause_short():
    clock = Clock(100.0)
    limit = AdaptiveLimit(8, clock=clock)
    limit.acquire()
    limit.acquire()
    limit.release(rate_limited_for=10.0)
    clock.now = 101.0
    limit.release(rate_limited_for=2.0)

    assert limit.paused_until == 110.0


def test_acquire_waits_until_the_clock_passes_the_pause():
    clock = Clock(100.0)
    limit = AdaptiveLimit(2, clock=clock)
    limit.acquire()
    limit.acquire()
    limit.release(rate_limited_for=5.0)  # a 429: everyone pauses until 105; the other request is in flight
    assert (limit.limit, limit.in_flight, limit.paused_until) == (1, 1, 105.0)
    acquired = threading.Event()

    def worker() -> None:
        limit.acquire()
        acquired.set()

    reads = clock.reads
    thread = threading.Thread(target=worker, daemon=True)
    thread.start()
    try:
        assert clock.wait_reads(reads + 1)  # the worker looked, and is waiting
        clock.now = 104.99
        limit.release()  # the other request ends: a slot is free, but the pause is not over
        assert clock.wait_reads(reads + 2)
        assert not acquired.is_set()  # it read 104.99 < 105: it cannot have started
        assert limit.in_flight == 0
        clock.now = 105.0
        thread.join(timeout=10)
        assert acquired.is_set()
        assert limit.in_flight == 1
    finally:
        clock.now = 1e9
        limit.release()
        thread.join(timeout=10)


def test_acquire_waits_for_a_free_slot():
    clock = Clock()
    limit = AdaptiveLimit(2, clock=clock)
    limit.acquire()
    limit.acquire()
    acquired = threading.Event()

    def worker() -> None:
        limit.acquire()
        acquired.set()

    reads = clock.reads
    thread = threading.Thread(target=worker, daemon=True)
    thread.start()
    try:
        assert clock.wait_reads(reads + 1)
        assert not acquired.is_set()
        assert limit.in_flight == 2  # never above the limit
        limit.release()
        thread.join(timeout=10)
        assert acquired.is_set()
        assert limit.in_flight == 2
    finally:
        limit.release()
        thread.join(timeout=10)


def test_limit_grows_back_by_one_per_round_of_successes():
    limit = AdaptiveLimit(8, clock=Clock())
    rate_limited(limit, 0.0)
    rate_limited(limit, 0.0)
    assert limit.limit == 2

    succeed(limit, 1)
    assert limit.limit == 2
    succeed(limit, 1)  # a round at 2 is two successes
    assert limit.limit == 3
    succeed(limit, 2)
    assert limit.limit == 3
    succeed(limit, 1)
    assert limit.limit == 4
    succeed(limit, 4 + 5 + 6 - 1)
    assert limit.limit == 6
    succeed(limit, 1)
    assert limit.limit == 7
    succeed(limit, 7)
    assert limit.limit == 8


def test_limit_never_grows_above_the_ceiling():
    limit = AdaptiveLimit(3, clock=Clock())

    succeed(limit, 500)
    assert limit.limit == 3
    rate_limited(limit, 0.0)
    succeed(limit, 500)
    assert limit.limit == 3


def test_a_429_restarts_the_round():
    limit = AdaptiveLimit(8, clock=Clock())
    rate_limited(limit, 0.0)  # 4
    succeed(limit, 3)  # one short of a round at 4
    rate_limited(limit, 0.0)  # 2, and the count starts over

    succeed(limit, 1)
    assert limit.limit == 2
    succeed(limit, 1)
    assert limit.limit == 3
