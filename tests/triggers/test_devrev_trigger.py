"""DevRevSessionTrigger: real aiohttp against the simulator, with the polling loop's clock faked."""

from __future__ import annotations

import asyncio
import importlib
import json

import pytest

from airflow_provider_devrev.exceptions import DevRevAuthError, DevRevError
from airflow_provider_devrev.hooks import _rate_gate
from airflow_provider_devrev.triggers.devrev import DevRevSessionTrigger, session_from_event
from tests.fakes import FakeClock

VERSION = "com.example.app@1.0.0"


@pytest.fixture
def clock(monkeypatch) -> FakeClock:
    fake = FakeClock(start=1_000_000.0)
    monkeypatch.setattr(DevRevSessionTrigger, "clock", staticmethod(fake.time))
    monkeypatch.setattr(DevRevSessionTrigger, "sleep", staticmethod(fake.async_sleep))
    # The shared rate limit's pauses pass on the same clock as the trigger's waits.
    monkeypatch.setattr(_rate_gate, "now", fake.time)
    return fake


def make_trigger(session_id: str, *, poll_interval: float = 30, end_time: float | None = None, **options):
    return DevRevSessionTrigger(
        devrev_conn_id="devrev_default",
        platform="android",
        session_id=session_id,
        version_key=VERSION,
        poll_interval=poll_interval,
        end_time=end_time,
        hook_options=options,
    )


def run_to_events(trigger: DevRevSessionTrigger) -> list[dict]:
    async def consume():
        return [event.payload async for event in trigger.run()]

    return asyncio.run(consume())


def test_fires_one_success_event_with_the_session_after_it_appears(devrev_simulator, clock):
    sim = devrev_simulator
    session = sim.add_session(
        sim.make_session("mobile", platform="android"), version_key=VERSION, appear_after_requests=4
    )

    events = run_to_events(make_trigger(session["session_id"], poll_interval=30))

    assert events == [{"status": "success", "session": session}]
    assert len(sim.requests_for(path="/observability.sessions.get")) == 4
    assert clock.sleeps == [30, 30, 30]


def test_keeps_polling_through_404_429_and_503(devrev_simulator, clock):
    sim = devrev_simulator
    session = sim.add_session(sim.make_session("mobile", platform="android"), version_key=VERSION)
    sim.add_fault("status", status=404, body={"type": "not_found", "message": "not yet"})
    sim.add_fault("rate_limit", retry_after=45)
    sim.add_fault("server_error", status=503)

    events = run_to_events(make_trigger(session["session_id"], poll_interval=10, max_retries=0))

    assert events == [{"status": "success", "session": session}]
    assert len(sim.requests) == 4
    # After the 429 the next poll waits what DevRev asked, not just the poll interval.
    assert clock.sleeps == [10, 45, 10]


def test_retries_inside_one_poll_use_the_hooks_policy(devrev_simulator, clock):
    sim = devrev_simulator
    session = sim.add_session(sim.make_session("web", platform="web"), version_key=VERSION)
    sim.add_fault("server_error", status=500, times=2)
    trigger = DevRevSessionTrigger(
        devrev_conn_id="devrev_default",
        platform="web",
        session_id=session["session_id"],
        version_key=VERSION,
        poll_interval=60,
    )

    events = run_to_events(trigger)

    assert events[0]["status"] == "success"
    assert len(sim.requests) == 3
    assert len(clock.sleeps) == 2
    assert all(0 < s <= 60 for s in clock.sleeps)


def test_token_revoked_mid_wait_ends_with_an_error_event_at_once(devrev_simulator, clock):
    sim = devrev_simulator
    sim.add_fault("status", status=404, body={"type": "not_found"}, times=2)
    sim.add_fault("revoked")

    events = run_to_events(make_trigger("never-there", poll_interval=5))

    [event] = events
    assert event["status"] == "error"
    assert event["error_type"] == "token_revoked"
    assert event["status_code"] == 401
    assert len(sim.requests) == 3
    with pytest.raises(DevRevAuthError):
        session_from_event(event)


def test_deadline_ends_the_wait_with_a_timeout_event_after_hours_of_simulated_time(devrev_simulator, clock):
    sim = devrev_simulator
    end_time = clock.now + 3 * 3600

    [event] = run_to_events(make_trigger("never-there", poll_interval=300, end_time=end_time))

    assert event["status"] == "error"
    assert event["error_type"] == "sensor_timeout"
    # One check at the start and one per poll interval, the last at the deadline itself; a fake clock lands on
    # it exactly, which is not past it, so one more check comes 1 s after, as poke mode's would
    # (run_duration > timeout).
    assert len(sim.requests) == 3 * 3600 // 300 + 2
    assert sum(clock.sleeps) == pytest.approx(3 * 3600 + 1)
    assert clock.sleeps[:-1] == [300] * (3 * 3600 // 300)


def test_serialize_holds_no_secret_and_survives_airflows_serializers(devrev_simulator):
    from airflow.serialization.serialized_objects import BaseSerialization

    trigger = make_trigger("s-1", poll_interval=12.5, end_time=1_800_000_000.0, timeout=5, max_retries=2)
    classpath, kwargs = trigger.serialize()

    assert classpath == "airflow_provider_devrev.triggers.devrev.DevRevSessionTrigger"
    assert set(kwargs) == {
        "devrev_conn_id",
        "platform",
        "session_id",
        "version_key",
        "poll_interval",
        "end_time",
        "next_poll_at",
        "exponential_backoff",
        "max_wait",
        "hook_options",
    }
    assert devrev_simulator.token not in json.dumps(kwargs)
    assert devrev_simulator.token not in repr(trigger)
    stored = BaseSerialization.deserialize(BaseSerialization.serialize(kwargs))
    assert stored == kwargs
    try:
        from airflow.sdk.serde import deserialize, serialize
    except ImportError:  # Airflow 2.11
        pass
    else:
        assert deserialize(serialize(kwargs)) == kwargs
    module, _, name = classpath.rpartition(".")
    rebuilt = getattr(importlib.import_module(module), name)(**stored)
    assert rebuilt.serialize() == (classpath, kwargs)


def test_a_rebuilt_trigger_resumes_the_wait(devrev_simulator, clock, monkeypatch):
    sim = devrev_simulator
    session = sim.add_session(
        sim.make_session("mobile", platform="android"), version_key=VERSION, appear_after_requests=3
    )
    first = make_trigger(session["session_id"], poll_interval=7, end_time=clock.now + 600)

    async def killed(seconds: float) -> None:
        # The triggerer dies while the trigger sleeps between polls.
        raise asyncio.CancelledError

    monkeypatch.setattr(DevRevSessionTrigger, "sleep", staticmethod(killed))
    with pytest.raises(asyncio.CancelledError):
        run_to_events(first)
    assert len(sim.requests) == 1

    monkeypatch.setattr(DevRevSessionTrigger, "sleep", staticmethod(clock.async_sleep))
    _, kwargs = first.serialize()
    events = run_to_events(DevRevSessionTrigger(**kwargs))

    assert events == [{"status": "success", "session": session}]
    assert len(sim.requests) == 3


@pytest.mark.parametrize(
    "event",
    [None, "success", {}, {"status": "success"}, {"status": "success", "session": "x"}, {"status": "done"}],
)
def test_malformed_events_are_clear_errors(event):
    with pytest.raises(DevRevError, match="event"):
        session_from_event(event)


def test_concurrent_triggers_share_one_pool_and_one_connection_lookup(devrev_simulator, clock, monkeypatch):
    from airflow_provider_devrev.hooks import _async_transport, _credentials

    lookups: list[str] = []
    real_lookup = _credentials._lookup

    async def counting_lookup(conn_id, hook_class):
        lookups.append(conn_id)
        return await real_lookup(conn_id, hook_class)

    monkeypatch.setattr(_credentials, "_lookup", counting_lookup)

    sim = devrev_simulator
    sessions = [
        sim.add_session(sim.make_session("mobile", platform="android"), version_key=VERSION, appear_after_requests=2)
        for _ in range(50)
    ]
    triggers = [make_trigger(s["session_id"], poll_interval=1) for s in sessions]
    pools_seen: set[int] = set()

    async def run_all():
        async def one(trigger):
            events = [event.payload async for event in trigger.run()]
            pools_seen.update(id(pool.session) for pool in _async_transport._POOLS.values())
            return events

        return await asyncio.gather(*(one(t) for t in triggers))

    results = asyncio.run(run_all())

    assert [events[0]["session"] for events in results] == sessions
    assert len(sim.requests) == 100
    assert len(pools_seen) == 1
    assert sim.connections_opened <= _async_transport.POOL_SIZE
    assert not _async_transport._POOLS, "the last trigger closes the pool"
    assert lookups == ["devrev_default"], "50 triggers started together share one connection lookup"


def test_first_poll_continues_the_workers_cadence(devrev_simulator, clock):
    session = devrev_simulator.add_session(
        devrev_simulator.make_session("web", platform="web"), version_key=VERSION, appear_after_requests=2
    )
    trigger = DevRevSessionTrigger(
        devrev_conn_id="devrev_default",
        platform="web",
        session_id=session["session_id"],
        version_key=VERSION,
        poll_interval=30,
        next_poll_at=clock.now + 25,
    )

    [event] = run_to_events(trigger)

    assert event["status"] == "success"
    assert clock.sleeps == [25, 30]


def test_exponential_backoff_is_applied_in_deferrable_mode_too(devrev_simulator, clock):
    trigger = make_trigger("never-there", poll_interval=10, end_time=clock.now + 1000)
    trigger.exponential_backoff = True
    trigger.max_wait = 200

    [event] = run_to_events(trigger)

    assert event["error_type"] == "sensor_timeout"
    # min_backoff doubles per check (10, 20, 40, ...), with up to as much again of jitter, capped at 200
    # and at the time left (but never below 1 s).
    elapsed = 0.0
    for number, wait in enumerate(clock.sleeps, start=2):
        floor, left = max(int(10 * 2 ** (number - 2)), 1), max(1.0, 1000 - elapsed)
        assert min(floor, 200, left) <= wait <= min(2 * floor, 200, left)
        elapsed += wait
    assert elapsed > 1000
    assert len(devrev_simulator.requests) == len(clock.sleeps) + 1


def test_a_zero_poll_interval_still_waits_between_polls(devrev_simulator, clock):
    [event] = run_to_events(make_trigger("never-there", poll_interval=0, end_time=clock.now + 1))

    assert event["error_type"] == "sensor_timeout"
    assert clock.sleeps
    assert all(wait == 0.1 for wait in clock.sleeps)
    assert len(devrev_simulator.requests) == len(clock.sleeps) + 1 <= 12


def test_a_cancelled_connection_lookup_is_not_cached(monkeypatch):
    from airflow_provider_devrev.hooks import _credentials

    blocked = [True]

    async def lookup(conn_id, hook_class):
        if blocked[0]:
            await asyncio.Event().wait()  # never finishes: cancelled below
        return "conn", {"fresh": True}

    monkeypatch.setattr(_credentials, "_lookup", lookup)

    async def scenario():
        first = asyncio.ensure_future(_credentials.connection_fields("c", object))
        await asyncio.sleep(0)
        _credentials._CONNECTIONS[asyncio.get_running_loop()]["c"][1].cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
        blocked[0] = False
        return await asyncio.wait_for(_credentials.connection_fields("c", object), 5)

    assert asyncio.run(scenario()) == ("conn", {"fresh": True})


# -- credentials and the connection lookup ----------------------------------------------------------------


def test_a_token_rotated_mid_wait_is_read_again_past_the_loops_cache(devrev_simulator, clock, monkeypatch):
    sim = devrev_simulator
    session = sim.add_session(
        sim.make_session("mobile", platform="android"), version_key=VERSION, appear_after_requests=3
    )
    new_token = "rotated-" + "0123456789abcdef" * 3

    def rotate() -> None:
        sim.rotate_token(new_token)
        monkeypatch.setenv("AIRFLOW_CONN_DEVREV_DEFAULT", sim.connection_json())

    sim.at_request(2, rotate)

    events = run_to_events(make_trigger(session["session_id"], poll_interval=30))

    assert events == [{"status": "success", "session": session}]
    assert [(r.token, r.status) for r in sim.requests] == [(1, 404), (1, 401), (2, 404), (2, 200)]
    assert clock.sleeps == [30, 30], "the poll that met the 401 sent its request again at once"


def test_a_401_is_never_answered_by_a_lookup_that_started_before_the_request(devrev_simulator, monkeypatch):
    # Seen in the cluster's rotation test: a cache refresh that read the connection before it was rotated, still
    # in flight when the 401 came, is newer than the hook's settings but holds the old token.
    from airflow_provider_devrev.hooks import _credentials
    from airflow_provider_devrev.hooks.devrev import DevRevHook

    sim = devrev_simulator
    session = sim.add_session(sim.make_session("mobile", platform="android"), version_key=VERSION)
    real = _credentials._lookup_and_mask
    read, release = asyncio.Event(), asyncio.Event()

    async def read_then_wait(conn_id, hook_class):
        fields = await real(conn_id, hook_class)  # the connection as it is now: the old token
        read.set()
        await release.wait()
        return fields

    async def scenario() -> dict:
        hook = DevRevHook("devrev_default", max_retries=0)
        await hook.aget_settings()
        monkeypatch.setattr(_credentials, "_lookup_and_mask", read_then_wait)
        stale = asyncio.ensure_future(_credentials.connection_lookup("devrev_default", DevRevHook, newer_than=10**9))
        await read.wait()
        monkeypatch.setattr(_credentials, "_lookup_and_mask", real)
        sim.rotate_token("rotated-" + "fedcba9876543210" * 3)
        monkeypatch.setenv("AIRFLOW_CONN_DEVREV_DEFAULT", sim.connection_json())
        # The stale lookup answers while the refused request is in flight.
        loop = asyncio.get_running_loop()
        sim.at_request(1, lambda: loop.call_soon_threadsafe(release.set))
        try:
            return await asyncio.wait_for(hook.aget_session("android", session["session_id"], VERSION), 10)
        finally:
            release.set()
            await stale

    assert asyncio.run(scenario()) == session
    assert [(r.token, r.status) for r in sim.requests] == [(1, 401), (2, 200)]


def _failing_lookups(monkeypatch, failures: int, error: Exception) -> list[str]:
    from airflow_provider_devrev.hooks import _credentials

    calls: list[str] = []
    real_lookup = _credentials._lookup

    async def flaky(conn_id, hook_class):
        calls.append(conn_id)
        if len(calls) <= failures:
            raise error
        return await real_lookup(conn_id, hook_class)

    monkeypatch.setattr(_credentials, "_lookup", flaky)
    return calls


def test_a_failing_connection_lookup_is_retried_with_backoff_like_a_5xx(devrev_simulator, clock, monkeypatch):
    session = devrev_simulator.add_session(devrev_simulator.make_session("web", platform="web"), version_key=VERSION)
    # The hook's own retries (2) run out once, the next poll's lookup succeeds after one more failure.
    calls = _failing_lookups(monkeypatch, 4, RuntimeError("secrets backend: 503 from Vault"))
    trigger = DevRevSessionTrigger(
        devrev_conn_id="devrev_default",
        platform="web",
        session_id=session["session_id"],
        version_key=VERSION,
        poll_interval=30,
        end_time=clock.now + 3600,
        hook_options={"max_retries": 2},
    )

    events = run_to_events(trigger)

    assert events == [{"status": "success", "session": session}]
    assert len(calls) == 5
    assert len(devrev_simulator.requests) == 1
    # Backoff waits inside each poll (as for a 5xx), the poll interval between the two polls.
    assert 30 in clock.sleeps
    assert all(wait > 0 for wait in clock.sleeps)
    assert len(clock.sleeps) == 4


def test_a_connection_lookup_that_hangs_times_out_and_is_retried(devrev_simulator, clock, monkeypatch):
    # A secrets backend or supervisor that never answers must not hold the trigger (and every other DevRev
    # trigger of the loop, which share the lookup) forever.
    from airflow_provider_devrev.hooks import _credentials

    sim = devrev_simulator
    session = sim.add_session(sim.make_session("mobile", platform="android"), version_key=VERSION)
    real_lookup, calls = _credentials._lookup_and_mask, []

    async def hangs_once(conn_id, hook_class):
        calls.append(conn_id)
        if len(calls) == 1:
            await asyncio.Event().wait()
        return await real_lookup(conn_id, hook_class)

    monkeypatch.setattr(_credentials, "_lookup_and_mask", hangs_once)
    # Long enough for the real lookup that follows on a loaded machine (at 0.2 s a 2.11.2 leg at load 20 timed
    # the second lookup out too); only the hanging one may reach it.
    monkeypatch.setattr(_credentials, "CONNECTION_LOOKUP_TIMEOUT", 2.0)

    events = run_to_events(make_trigger(session["session_id"], poll_interval=30, max_retries=2))

    assert events == [{"status": "success", "session": session}]
    assert calls == ["devrev_default", "devrev_default"], "the timed-out lookup was not cached"
    assert len(clock.sleeps) == 1
    assert clock.sleeps[0] > 0, "retried after a backoff, like a 5xx"
    assert len(devrev_simulator.requests) == 1


def test_a_lookup_that_keeps_failing_ends_at_the_sensors_deadline(devrev_simulator, clock, monkeypatch):
    _failing_lookups(monkeypatch, 10**6, ConnectionError("API server restarting"))

    [event] = run_to_events(make_trigger("never-there", poll_interval=60, end_time=clock.now + 600, max_retries=1))

    assert event["error_type"] == "sensor_timeout"
    assert devrev_simulator.requests == []


def test_a_missing_connection_is_final_at_once():
    trigger = DevRevSessionTrigger(
        devrev_conn_id="devrev_does_not_exist", platform="ios", session_id="s", version_key=VERSION, poll_interval=5
    )

    [event] = run_to_events(trigger)

    assert event["status"] == "error"
    assert "devrev_does_not_exist" in event["message"]


def test_no_exception_escapes_run_it_becomes_the_error_event(devrev_simulator, clock, monkeypatch, caplog):
    from airflow_provider_devrev.hooks.devrev import DevRevHook

    async def broken(self, request, **kwargs):
        raise ValueError("something nobody expected")

    monkeypatch.setattr(DevRevHook, "acall", broken)

    [event] = run_to_events(make_trigger("s-1", poll_interval=5))

    assert event["status"] == "error"
    assert event["error_type"] == "trigger_error"
    assert "ValueError" in event["message"]
    with pytest.raises(DevRevError, match="trigger failed unexpectedly"):
        session_from_event(event)


def test_a_bad_stored_token_ends_the_wait_with_an_error_event_not_a_crash(devrev_simulator, clock, monkeypatch):
    conn = json.loads(devrev_simulator.connection_json())
    conn["password"] = devrev_simulator.token[:8] + "\n" + devrev_simulator.token[8:]
    monkeypatch.setenv("AIRFLOW_CONN_DEVREV_DEFAULT", json.dumps(conn))

    [event] = run_to_events(make_trigger("s-1", poll_interval=5))

    assert event["status"] == "error"
    assert "newline inside" in event["message"]
    assert devrev_simulator.token[:8] not in event["message"]
    assert devrev_simulator.requests == []
