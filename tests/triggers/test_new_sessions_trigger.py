"""
DevRevNewSessionsTrigger against the real simulator (aiohttp on loopback), one poll at a time.

The trigger's ``clock`` and ``sleep`` are replaced by :class:`Driver`: a sleep advances a fake clock and then
parks the trigger until the test calls :meth:`Driver.poll` again. So each ``poll()`` is exactly one pass of
the trigger's loop (listing, events, state save), the test changes the world between two passes (adds
sessions, scripts faults, revokes the token), and hours of polling take no real time.

The fake clock starts an hour after the simulator's seed epoch, so the seeded data set is "recent": the
well-known crash ``sim-android-crash-0001`` (created two hours before the epoch) is inside the default
one-day lookback and must be part of the baseline.
"""

from __future__ import annotations

import asyncio
import copy
import importlib
import importlib.metadata
import json
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from airflow_provider_devrev.exceptions import DevRevInvalidInputError
from airflow_provider_devrev.hooks import _rate_gate
from airflow_provider_devrev.testing.data import (
    SEED_ANDROID_SESSION_ID,
    SEED_EPOCH,
    SEED_PREVIOUS_VERSION_KEY,
    SEED_VERSION_KEY,
    seed_sessions,
)
from airflow_provider_devrev.triggers.devrev import MAX_ERROR_WAIT, SAVE_DELAY, DevRevNewSessionsTrigger

LIST = "/observability.sessions.list"
T0 = (SEED_EPOCH + timedelta(hours=1)).timestamp()
DAY = 86400.0
#: Real seconds one poll may take before the test gives up (a poll is a few loopback requests).
STEP_TIMEOUT = 30.0

AIRFLOW_VERSION = tuple(int(part) for part in importlib.metadata.version("apache-airflow").split(".")[:2])


class Driver:
    """
    Runs one trigger's ``run()`` in a background task; its ``sleep`` parks it until the next :meth:`poll`.

    ``sleeps`` records every wait the trigger asked for (poll interval, error backoff, the hook's own
    retry waits: the hook is given the trigger's ``sleep``), ``events`` every payload it yielded.
    """

    def __init__(self, start: float) -> None:
        self.now = start
        self.sleeps: list[float] = []
        self.events: list[dict[str, Any]] = []
        self._trigger: DevRevNewSessionsTrigger | None = None
        self._task: asyncio.Task[None] | None = None
        self._asleep: asyncio.Future[float] | None = None
        self._wake: asyncio.Future[None] | None = None

    def time(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        assert self._asleep is not None
        self._wake = asyncio.get_running_loop().create_future()
        self._asleep.set_result(seconds)
        await self._wake

    def watch(self, trigger: DevRevNewSessionsTrigger) -> None:
        """Run ``trigger`` from the next :meth:`poll` on (after :meth:`stop` of the previous one)."""
        assert self._task is None, "stop() the running trigger first"
        self._trigger = trigger

    async def poll(self) -> list[dict[str, Any]]:
        """Let the trigger run until it sleeps again; return the payloads it yielded meanwhile."""
        loop = asyncio.get_running_loop()
        self._asleep = loop.create_future()
        before = len(self.events)
        if self._task is None:
            assert self._trigger is not None, "watch() a trigger first"
            self._task = loop.create_task(self._consume(self._trigger))
        else:
            assert self._wake is not None
            self._wake.set_result(None)
        done, _ = await asyncio.wait(
            {self._asleep, self._task}, timeout=STEP_TIMEOUT, return_when=asyncio.FIRST_COMPLETED
        )
        if self._asleep not in done:
            if self._task.done():
                self._task.result()  # raises what ended run()
                raise AssertionError("the trigger's run() returned; it must poll forever")
            raise AssertionError(f"the trigger did not reach its next sleep within {STEP_TIMEOUT} s")
        return self.events[before:]

    async def polls(self, count: int) -> list[dict[str, Any]]:
        """``count`` polls; every payload yielded during them."""
        events = []
        for _ in range(count):
            events += await self.poll()
        return events

    async def stop(self) -> None:
        """Cancel the trigger where it sleeps, as a triggerer does (or as if its process died)."""
        if self._task is not None:
            self._task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await self._task
        self._task = self._trigger = None

    async def _consume(self, trigger: DevRevNewSessionsTrigger) -> None:
        async for event in trigger.run():
            self.events.append(event.payload)


class FakeStateStore:
    """
    What the triggerer puts in ``trigger.asset_state_store`` on Airflow 3.3+ (``AssetStateStoreAccessors``),
    reduced to what the trigger uses: ``_single_accessor()`` (raises unless exactly one asset is watched),
    ``aget(key, default)`` and ``aset(key, value)``. Values go through JSON, as Airflow stores them.
    """

    def __init__(self, *, assets: int = 1) -> None:
        self.assets = assets
        self.values: dict[str, Any] = {}
        self.sets: list[tuple[str, Any]] = []
        self.gets: list[str] = []
        self.fail_get: Exception | None = None
        self.fail_set: Exception | None = None

    def _single_accessor(self) -> FakeStateStore:
        if self.assets != 1:
            raise ValueError(f"Task has {self.assets} concrete inlets and outlets")
        return self

    async def aget(self, key: str, default: Any = None) -> Any:
        self.gets.append(key)
        if self.fail_get is not None:
            raise self.fail_get
        return copy.deepcopy(self.values.get(key, default))

    async def aset(self, key: str, value: Any) -> None:
        if self.fail_set is not None:
            raise self.fail_set
        stored = json.loads(json.dumps(value))
        self.sets.append((key, stored))
        self.values[key] = stored

    def saved_ids(self, key: str) -> set[str]:
        return set(self.values[key]["recent"])


# -- helpers ---------------------------------------------------------------------------------------------


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(scenario())


def at(seconds_ago: float, driver: Driver) -> datetime:
    """The fake clock's now minus ``seconds_ago``, as a created_at."""
    return datetime.fromtimestamp(driver.now - seconds_ago, tz=UTC)


def add(sim, driver: Driver, session_id: str, *, age: float = 60.0, version_key: str = SEED_VERSION_KEY, **fields):
    """Add a mobile session created ``age`` seconds before the fake now (android crash unless told)."""
    fields.setdefault("is_crash", True)
    session = sim.make_session(
        "mobile",
        platform=fields.pop("platform", "android"),
        session_id=session_id,
        created_at=at(age, driver),
        **fields,
    )
    return sim.add_session(session, version_key=version_key)


def crash_trigger(**kwargs: Any) -> DevRevNewSessionsTrigger:
    options = {
        "platform": "android",
        "version_key": SEED_VERSION_KEY,
        "filters": {"is_crash": True},
        "poll_interval": 60,
        "event_spacing": 0,  # one park of the Driver per poll; spacing has its own test
        **kwargs,
    }
    return DevRevNewSessionsTrigger(**options)


def ids(events: list[dict[str, Any]]) -> list[str]:
    return [event["session_id"] for event in events]


def seeded_crashes_in_lookback(now: float, lookback: float = DAY) -> set[str]:
    """The seeded android crash sessions of SEED_VERSION_KEY created at or after ``now - lookback``."""
    after = datetime.fromtimestamp(now - lookback, tz=UTC)
    return {
        session["session_id"]
        for version_key, session in seed_sessions(0)
        if version_key == SEED_VERSION_KEY
        and session["platform"] == "android"
        and session["is_crash"]
        and datetime.fromisoformat(session["created_at"].replace("Z", "+00:00")) >= after
    }


def list_requests(sim) -> list:
    return sim.requests_for(path=LIST)


@pytest.fixture
def driver(monkeypatch) -> Driver:
    fake = Driver(start=T0)
    monkeypatch.setattr(DevRevNewSessionsTrigger, "clock", staticmethod(fake.time))
    monkeypatch.setattr(DevRevNewSessionsTrigger, "sleep", staticmethod(fake.sleep))
    # The shared rate limit's pauses pass on the same clock as the trigger's waits.
    monkeypatch.setattr(_rate_gate, "now", fake.time)
    return fake


@pytest.fixture
def sim(devrev_simulator):
    return devrev_simulator


def logged(caplog, capsys) -> str:
    """Everything logged: stdlib records (caplog) and Airflow 3's structlog output (stdout/stderr)."""
    out = capsys.readouterr()
    return "\n".join([caplog.text, out.out, out.err])


# -- what fires --------------------------------------------------------------------------------------------


def test_first_poll_is_a_baseline_then_each_new_matching_session_fires_exactly_once(sim, driver):
    async def scenario():
        existing = {add(sim, driver, f"old-crash-{n}", age=3600 * (n + 1))["session_id"] for n in range(3)}
        existing.add(SEED_ANDROID_SESSION_ID)
        add(sim, driver, "old-no-crash", is_crash=False)
        assert seeded_crashes_in_lookback(T0) == {SEED_ANDROID_SESSION_ID}  # the seeded crash in the window
        driver.watch(crash_trigger(poll_interval=60))

        # Poll 1: the baseline. Nothing fires, whatever exists.
        assert await driver.poll() == []
        [baseline] = list_requests(sim)
        assert baseline.method == "POST"
        assert baseline.body["is_crash"] is True
        assert baseline.body["type"] == "mobile"
        assert baseline.body["platform"] == "android"
        assert baseline.body["version_key"] == SEED_VERSION_KEY
        assert baseline.body["created_at"] == {"type": "range", "after": "2025-06-01T10:00:00.000000Z"}
        assert driver.sleeps == [60]

        # Poll 2: two new crashes fire, in created_at order, with the session as DevRev served it.
        first = add(sim, driver, "new-crash-1", age=30)
        second = add(sim, driver, "new-crash-2", age=10)
        add(sim, driver, "new-no-crash", is_crash=False)
        add(sim, driver, "new-ios-crash", platform="ios")
        add(sim, driver, "new-crash-other-version", version_key=SEED_PREVIOUS_VERSION_KEY)
        events = await driver.poll()
        assert events == [
            {"session_id": "new-crash-1", "session": first},
            {"session_id": "new-crash-2", "session": second},
        ]

        # Poll 3: a late upload (created 20 h ago, inside the one-day lookback) fires; one created 25 h ago,
        # outside it, never does.
        late = add(sim, driver, "late-upload", age=20 * 3600)
        add(sim, driver, "too-late-upload", age=25 * 3600)
        assert await driver.poll() == [{"session_id": "late-upload", "session": late}]

        # Many polls later nothing has fired again, and nothing that existed at the baseline ever did.
        assert await driver.polls(10) == []
        fired = ids(driver.events)
        assert fired == ["new-crash-1", "new-crash-2", "late-upload"]
        assert not existing & set(fired)
        assert len(list_requests(sim)) == 13
        assert driver.sleeps == [60] * 13
        await driver.stop()

    run(scenario)


def test_a_baseline_session_never_fires_even_after_it_drops_out_of_the_lookback(sim, driver):
    """Seen ids are forgotten once no listing can return them; forgetting must not make them fire."""

    async def scenario():
        add(sim, driver, "near-the-edge", age=DAY - 90)  # leaves the lookback about 90 s from now
        trigger = crash_trigger(poll_interval=30, lookback=DAY)
        trigger.asset_state_store = store = FakeStateStore()
        driver.watch(trigger)
        assert await driver.poll() == []
        assert "near-the-edge" in store.saved_ids(trigger.state_key)
        assert await driver.polls(8) == []  # 4 minutes: near-the-edge has left the lookback, silently
        add(sim, driver, "fresh", age=0)
        assert ids(await driver.poll()) == ["fresh"]
        assert await driver.poll() == []
        # The state saved after that event no longer holds the id below its floor, and holds only ids above it.
        saved = store.values[trigger.state_key]
        assert "near-the-edge" not in saved["recent"]
        assert "fresh" in saved["recent"]
        assert saved["floor"] >= (driver.now - DAY - 60) * 1_000_000
        assert all(created >= saved["floor"] for created in saved["recent"].values())
        assert await driver.polls(3) == []
        await driver.stop()

    run(scenario)


def test_without_a_state_store_a_new_instance_starts_afresh_and_misses_what_appeared_meanwhile(sim, driver):
    """Airflow 3.0-3.2 (no asset state store), or ``dag.test()``: at most once, as documented."""

    async def scenario():
        trigger = crash_trigger()
        assert getattr(trigger, "asset_state_store", None) is None  # nothing injected outside a triggerer
        driver.watch(trigger)
        assert await driver.poll() == []
        add(sim, driver, "fired-before-restart")
        assert ids(await driver.poll()) == ["fired-before-restart"]
        await driver.stop()

        add(sim, driver, "appeared-while-down")
        driver.watch(DevRevNewSessionsTrigger(**trigger.serialize()[1]))
        assert await driver.poll() == []  # a new baseline: neither the old one nor the one added while down
        add(sim, driver, "after-restart")
        assert ids(await driver.polls(3)) == ["after-restart"]
        assert ids(driver.events) == ["fired-before-restart", "after-restart"]
        await driver.stop()

    run(scenario)


# -- the asset state store (Airflow 3.3+) ------------------------------------------------------------------


def test_baseline_is_saved_at_once_and_events_are_saved_one_poll_behind(sim, driver):
    async def scenario():
        add(sim, driver, "existing")
        trigger = crash_trigger(poll_interval=60, hook_options={"max_retries": 0})
        trigger.asset_state_store = store = FakeStateStore()
        key = trigger.state_key
        driver.watch(trigger)

        assert await driver.poll() == []
        assert store.gets == [key]
        assert [k for k, _ in store.sets] == [key]  # the baseline, at the first poll
        baseline = seeded_crashes_in_lookback(T0) | {"existing"}
        assert store.saved_ids(key) == baseline
        assert store.values[key]["version"] == 2

        add(sim, driver, "new-1")
        assert ids(await driver.poll()) == ["new-1"]
        assert len(store.sets) == 1, "saved in the poll that fired: a crash now could lose the event"

        assert await driver.poll() == []  # the next successful poll saves what the previous one fired
        assert len(store.sets) == 2
        assert store.saved_ids(key) == baseline | {"new-1"}

        assert await driver.polls(3) == []
        assert len(store.sets) == 2, "nothing new, nothing saved"

        # A failed poll after events does not save; the next successful one does.
        add(sim, driver, "new-2")
        assert ids(await driver.poll()) == ["new-2"]
        sim.add_fault("server_error", status=503, path=LIST)
        assert await driver.poll() == []
        assert list_requests(sim)[-1].status == 503
        assert len(store.sets) == 2
        assert await driver.poll() == []
        assert len(store.sets) == 3
        assert store.saved_ids(key) == baseline | {"new-1", "new-2"}
        await driver.stop()

    run(scenario)


def test_with_a_short_poll_interval_the_position_waits_save_delay_after_the_events(sim, driver):
    """The triggerer needs a moment to hand events to Airflow's DB; a position saved before that could lose them."""

    async def scenario():
        trigger = crash_trigger(poll_interval=2)
        trigger.asset_state_store = store = FakeStateStore()
        key = trigger.state_key
        driver.watch(trigger)
        assert await driver.poll() == []
        add(sim, driver, "new-1")
        assert ids(await driver.poll()) == ["new-1"]
        fired_at = driver.now - 2  # the poll interval the trigger has slept since

        saves = []
        while "new-1" not in store.saved_ids(key):
            assert await driver.poll() == []
            saves.append(driver.now - 2 - fired_at)
        assert saves[-1] >= SAVE_DELAY
        assert all(waited < SAVE_DELAY for waited in saves[:-1])
        await driver.stop()

    run(scenario)


def test_the_events_of_one_poll_are_spaced_so_each_can_start_its_own_run(sim, driver):
    async def scenario():
        driver.watch(crash_trigger(event_spacing=5))
        assert await driver.poll() == []
        for number in range(3):
            add(sim, driver, f"burst-{number}", age=60 + number)
        driver.sleeps.clear()

        assert len(await driver.poll()) == 1  # then it waits event_spacing before the next
        assert len(await driver.poll()) == 1
        assert len(await driver.poll()) == 1  # the last one, then the poll interval
        assert sorted(ids(driver.events)) == ["burst-0", "burst-1", "burst-2"]
        # The next poll is due poll_interval after this one began, not after its last event.
        assert driver.sleeps == [5.0, 5.0, 50.0]
        await driver.stop()

    run(scenario)


def test_reordered_filters_are_the_same_trigger_and_another_connection_another_position():
    first = crash_trigger(filters={"is_crash": True, "app_version": ["5.2.0"]})
    reordered = crash_trigger(filters={"app_version": ["5.2.0"], "is_crash": True})
    elsewhere = crash_trigger(filters={"is_crash": True, "app_version": ["5.2.0"]}, devrev_conn_id="devrev_eu")

    assert first.serialize() == reordered.serialize()
    assert json.dumps(first.serialize()[1]) == json.dumps(reordered.serialize()[1])
    assert first.state_key == reordered.state_key
    assert elsewhere.state_key != first.state_key


def test_a_restarted_trigger_fires_what_appeared_while_it_was_down_and_nothing_already_recorded(sim, driver):
    async def scenario():
        add(sim, driver, "existing")
        first = crash_trigger()
        first.asset_state_store = store = FakeStateStore()
        driver.watch(first)
        assert await driver.poll() == []
        add(sim, driver, "before-restart")
        assert ids(await driver.poll()) == ["before-restart"]
        assert await driver.poll() == []  # saved now
        await driver.stop()

        add(sim, driver, "while-down-1", age=5 * 3600)  # a late upload, too
        add(sim, driver, "while-down-2")
        add(sim, driver, "while-down-no-crash", is_crash=False)
        classpath, kwargs = first.serialize()
        # The path it was first published under, though the class now lives in triggers/new_sessions.py.
        assert classpath == "airflow_provider_devrev.triggers.devrev.DevRevNewSessionsTrigger"
        module, _, name = classpath.rpartition(".")
        second = getattr(importlib.import_module(module), name)(**kwargs)
        assert second.state_key == first.state_key
        second.asset_state_store = store  # the same asset's store, as the next triggerer gets it
        driver.watch(second)
        assert ids(await driver.poll()) == ["while-down-1", "while-down-2"]  # no baseline: it resumed
        add(sim, driver, "after-restart")
        assert ids(await driver.polls(4)) == ["after-restart"]
        assert ids(driver.events) == ["before-restart", "while-down-1", "while-down-2", "after-restart"]
        assert store.saved_ids(first.state_key) >= {"existing", "before-restart", "while-down-1", "after-restart"}
        await driver.stop()

    run(scenario)


def test_a_restart_right_after_events_repeats_only_that_polls_events(sim, driver):
    """At least once: killed before the next poll saved them, the last poll's events come again, once."""

    async def scenario():
        first = crash_trigger()
        first.asset_state_store = store = FakeStateStore()
        driver.watch(first)
        assert await driver.poll() == []
        add(sim, driver, "saved")
        assert ids(await driver.poll()) == ["saved"]
        add(sim, driver, "unsaved-1")
        add(sim, driver, "unsaved-2")
        assert ids(await driver.poll()) == ["unsaved-1", "unsaved-2"]  # this poll saved "saved" only
        assert store.saved_ids(first.state_key) >= {"saved"}
        assert not store.saved_ids(first.state_key) & {"unsaved-1", "unsaved-2"}
        await driver.stop()  # killed before its next poll

        add(sim, driver, "while-down")
        second = DevRevNewSessionsTrigger(**first.serialize()[1])
        second.asset_state_store = store
        driver.watch(second)
        assert ids(await driver.poll()) == ["unsaved-1", "unsaved-2", "while-down"]
        assert await driver.polls(3) == []
        assert ids(driver.events).count("saved") == 1
        await driver.stop()

    run(scenario)


@pytest.mark.parametrize(
    "damaged",
    [
        "not a state",
        42,
        [],
        {},
        {"version": 2, "expiries": {}},
        {"version": 1, "expiries": ["existing"]},
        {"version": 1, "expiries": {"existing": "tomorrow"}},
        {"version": 1, "expiries": {"existing": True}},
    ],
)
def test_a_damaged_saved_state_starts_afresh_with_a_baseline(sim, driver, damaged):
    async def scenario():
        add(sim, driver, "existing")
        trigger = crash_trigger()
        trigger.asset_state_store = store = FakeStateStore()
        store.values[trigger.state_key] = damaged
        driver.watch(trigger)
        assert await driver.poll() == []  # a baseline: "existing" is not reported as new
        assert store.saved_ids(trigger.state_key) == seeded_crashes_in_lookback(T0) | {"existing"}
        add(sim, driver, "new")
        assert ids(await driver.polls(3)) == ["new"]
        await driver.stop()

    run(scenario)


def test_state_store_failures_are_logged_retried_and_never_stop_the_watch(sim, driver, caplog, capsys):
    """A failed read is retried rather than taken for "nothing saved": a fresh start would record, without
    firing, whatever appeared while the watch was down."""

    async def scenario():
        add(sim, driver, "existing")
        trigger = crash_trigger()
        trigger.asset_state_store = store = FakeStateStore()
        recorded = {*seeded_crashes_in_lookback(T0), "existing"}
        store.values[trigger.state_key] = {"version": 1, "expiries": dict.fromkeys(recorded, T0 + DAY), "lookback": DAY}
        store.fail_get = RuntimeError("state store unreachable")
        driver.watch(trigger)
        assert await driver.poll() == []
        add(sim, driver, "while-unreadable")
        assert await driver.poll() == []
        assert driver.sleeps == [60.0, 120.0]  # growing waits, and no listing meanwhile
        assert list_requests(sim) == []

        store.fail_get = None
        store.fail_set = RuntimeError("state store is read-only")
        assert ids(await driver.poll()) == ["while-unreadable"]  # resumed: not a baseline
        assert await driver.poll() == []  # its position is saved now, and the save fails
        store.fail_set = None
        add(sim, driver, "new-2")
        assert ids(await driver.poll()) == ["new-2"]
        assert await driver.poll() == []
        assert store.saved_ids(trigger.state_key) >= {"existing", "while-unreadable", "new-2"}
        await driver.stop()

    caplog.set_level(logging.INFO)
    run(scenario)
    text = logged(caplog, capsys)
    assert "Could not read this watch's saved position" in text
    assert "state store unreachable" in text
    assert "Could not save this watch's position" in text
    assert "state store is read-only" in text


def test_a_longer_lookback_after_a_restart_does_not_fire_old_sessions(sim, driver):
    """Raising lookback widens the window to sessions the watch never looked at: they are not new."""

    async def scenario():
        add(sim, driver, "two-days-old", age=2 * DAY)
        trigger = crash_trigger(lookback=DAY)
        trigger.asset_state_store = store = FakeStateStore()
        driver.watch(trigger)
        assert await driver.poll() == []
        await driver.stop()

        add(sim, driver, "while-down", age=60)
        add(sim, driver, "late-upload-three-days-old", age=3 * DAY)
        wider = crash_trigger(lookback=7 * DAY)
        assert wider.state_key == trigger.state_key  # the same watch, resumed
        wider.asset_state_store = store
        driver.watch(wider)
        assert ids(await driver.poll()) == ["while-down"]
        assert "while-down" not in store.saved_ids(wider.state_key), "saved before its event reached Airflow"
        assert await driver.polls(2) == []
        assert "while-down" in store.saved_ids(wider.state_key)
        # Never listed again: the watch lists nothing below its saved floor, however far back it may look.
        assert ids(driver.events) == ["while-down"]
        floor = datetime.fromtimestamp(T0 - DAY, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        assert [r.body["created_at"]["after"] >= floor for r in list_requests(sim)[1:]] == [True] * 3
        await driver.stop()

    run(scenario)


def test_a_trigger_watching_several_assets_runs_without_the_store(sim, driver):
    """The accessors cannot tell which asset's store to use: the trigger must not guess."""

    async def scenario():
        trigger = crash_trigger()
        trigger.asset_state_store = store = FakeStateStore(assets=2)
        driver.watch(trigger)
        assert await driver.poll() == []
        add(sim, driver, "new")
        assert ids(await driver.polls(2)) == ["new"]
        assert store.gets == []
        assert store.sets == []
        await driver.stop()

    run(scenario)


def test_state_keys_differ_by_what_is_watched_and_ignore_how_often():
    crashes = crash_trigger(filters={"is_crash": True, "app_version": ["5.2.0"]})
    same = crash_trigger(filters={"app_version": ["5.2.0"], "is_crash": True}, poll_interval=5, lookback=3600)
    assert crashes.state_key == same.state_key
    others = [
        crash_trigger(filters={"is_crash": True}),
        crash_trigger(filters={"is_anr": True, "app_version": ["5.2.0"]}),
        crash_trigger(filters={"is_crash": True, "app_version": ["5.2.0"]}, platform="ios"),
        crash_trigger(filters={"is_crash": True, "app_version": ["5.2.0"]}, version_key=SEED_PREVIOUS_VERSION_KEY),
        crash_trigger(filters=None),
    ]
    keys = {crashes.state_key, *(trigger.state_key for trigger in others)}
    assert len(keys) == 1 + len(others)
    assert all(key.startswith("devrev-seen-sessions-") for key in keys)


def test_the_fake_store_matches_airflows_accessors():
    """The fake above mirrors what the triggerer injects; on Airflow < 3.3 nothing is injected at all."""
    from airflow_provider_devrev.triggers.new_sessions import _state_store

    if AIRFLOW_VERSION >= (3, 3):
        import inspect

        from airflow.sdk import Asset
        from airflow.sdk.execution_time.context import AssetStateStoreAccessors

        assert list(inspect.signature(AssetStateStoreAccessors.aget).parameters) == ["self", "key", "default"]
        assert list(inspect.signature(AssetStateStoreAccessors.aset).parameters) == ["self", "key", "value"]
        trigger = crash_trigger()
        assert trigger.asset_state_store is None  # declared by BaseEventTrigger, filled by the triggerer
        trigger.asset_state_store = AssetStateStoreAccessors(inlets=[Asset(name="crashes")])
        assert _state_store(trigger) is trigger.asset_state_store
        trigger.asset_state_store = AssetStateStoreAccessors(inlets=[Asset(name="a"), Asset(name="b")])
        with pytest.raises(ValueError, match="2 concrete inlets"):
            trigger.asset_state_store._single_accessor()
        assert _state_store(trigger) is None
    else:
        assert getattr(crash_trigger(), "asset_state_store", None) is None
        assert _state_store(crash_trigger()) is None
    assert _state_store(type("T", (), {"asset_state_store": FakeStateStore()})()) is not None
    assert _state_store(type("T", (), {"asset_state_store": FakeStateStore(assets=0)})()) is None


# -- errors ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("retry_after", "expected_wait"), [(150, 150), (5, 60)])
def test_a_429_is_retried_at_the_next_poll_no_sooner_than_retry_after(sim, driver, retry_after, expected_wait):
    async def scenario():
        trigger = crash_trigger(poll_interval=60, hook_options={"max_retries": 0})
        trigger.asset_state_store = store = FakeStateStore()
        driver.watch(trigger)
        assert await driver.poll() == []
        add(sim, driver, "new")
        sim.add_fault("rate_limit", retry_after=retry_after, path=LIST)
        assert await driver.poll() == []
        assert list_requests(sim)[-1].status == 429
        assert driver.sleeps == [60, expected_wait]
        assert ids(await driver.poll()) == ["new"]
        assert await driver.polls(3) == []
        assert driver.sleeps == [60, expected_wait, 60, 60, 60, 60]
        assert ids(driver.events) == ["new"]
        assert store.saved_ids(trigger.state_key) >= {"new"}
        await driver.stop()

    run(scenario)


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_a_server_error_is_logged_and_retried_at_the_next_poll(sim, driver, caplog, capsys, status):
    async def scenario():
        driver.watch(crash_trigger(poll_interval=45, hook_options={"max_retries": 0}))
        assert await driver.poll() == []
        add(sim, driver, "new")
        sim.add_fault("server_error", status=status, path=LIST, times=2)
        assert await driver.polls(2) == []
        assert [r.status for r in list_requests(sim)] == [200, status, status]
        assert ids(await driver.poll()) == ["new"]
        assert driver.sleeps == [45, 45, 45, 45]  # transient: the poll interval, never a growing wait
        await driver.stop()

    caplog.set_level(logging.INFO)
    run(scenario)
    assert "Listing new DevRev sessions failed" in logged(caplog, capsys)


def test_the_hooks_own_retries_run_inside_one_poll_on_the_fake_clock(sim, driver):
    async def scenario():
        driver.watch(crash_trigger(poll_interval=60))  # the hook's default: 5 retries
        assert await driver.poll() == []
        add(sim, driver, "new")
        sim.add_fault("server_error", status=503, path=LIST, times=2)
        assert await driver.poll() == []  # parked in the hook's first backoff, not at the next poll
        assert await driver.poll() == []  # the second backoff
        assert ids(await driver.poll()) == ["new"]  # the third attempt of the same poll
        first_wait, second_wait = driver.sleeps[1:3]
        assert 0 < first_wait < 60
        assert 0 < second_wait < 60
        # The next poll is due poll_interval after this one began: the retries' waits count towards it.
        assert driver.sleeps[3] == pytest.approx(60 - first_wait - second_wait)
        assert [r.status for r in list_requests(sim)] == [200, 503, 503, 200]
        await driver.stop()

    run(scenario)


def test_a_revoked_token_is_logged_and_retried_with_growing_waits_then_events_resume(sim, driver, caplog, capsys):
    async def scenario():
        driver.watch(crash_trigger(poll_interval=10))
        assert await driver.poll() == []
        sim.revoke_token()
        add(sim, driver, "during-outage")
        assert await driver.polls(10) == []
        statuses = [r.status for r in list_requests(sim)]
        assert statuses == [200] + [401] * 10, "a 401 is final for the hook: one request per poll"
        assert driver.sleeps == [10, 10, 20, 40, 80, 160, 320, 600, 600, 600, 600]
        assert max(driver.sleeps) == MAX_ERROR_WAIT

        sim.set_token(sim.token)  # the token is valid again (a rotated secret would be a new connection)
        assert ids(await driver.poll()) == ["during-outage"]
        assert driver.sleeps[-1] == 10
        assert await driver.polls(2) == []

        sim.revoke_token()  # the backoff starts over after a success
        assert await driver.polls(2) == []
        assert driver.sleeps[-2:] == [10, 20]
        sim.set_token(sim.token)
        add(sim, driver, "after-outage")
        assert ids(await driver.polls(2)) == ["after-outage"]
        assert ids(driver.events) == ["during-outage", "after-outage"]
        await driver.stop()

    caplog.set_level(logging.INFO)
    run(scenario)
    text = logged(caplog, capsys)
    assert "status 401, token_revoked" in text
    assert sim.token not in text


def test_a_connection_that_does_not_exist_is_logged_and_retried(sim, driver, caplog, capsys):
    async def scenario():
        driver.watch(crash_trigger(devrev_conn_id="devrev_missing", poll_interval=10))
        assert await driver.polls(3) == []
        assert driver.sleeps == [10, 20, 40]
        assert list_requests(sim) == []
        await driver.stop()

    caplog.set_level(logging.INFO)
    run(scenario)
    assert "devrev_missing" in logged(caplog, capsys)


def test_a_failure_in_the_middle_of_pagination_marks_nothing_seen(sim, driver):
    async def scenario():
        trigger = crash_trigger(page_size=2, hook_options={"max_retries": 0})
        trigger.asset_state_store = store = FakeStateStore()
        driver.watch(trigger)
        assert await driver.poll() == []
        baseline = store.saved_ids(trigger.state_key)
        new = [add(sim, driver, f"new-{n}", age=600 - n)["session_id"] for n in range(5)]
        sim.add_fault("slow", delay=0, path=LIST)  # the first page passes untouched...
        sim.add_fault("server_error", status=500, path=LIST)  # ...the second fails
        requests_before = len(list_requests(sim))
        assert await driver.poll() == []
        failed_poll = list_requests(sim)[requests_before:]
        assert [(r.status, r.fault) for r in failed_poll] == [(200, "slow"), (500, "server_error")]
        # A later page: the listing asks by created_at range, each page from where the one before ended.
        assert failed_poll[1].body["created_at"]["after"] > failed_poll[0].body["created_at"]["after"]
        assert [k for k, _ in store.sets] == [trigger.state_key], "a failed poll saves nothing"
        assert store.saved_ids(trigger.state_key) == baseline

        # The next poll lists everything again: all five fire once each, new-0 included, which came on the
        # first page of the failed poll (with the seeded crash: pages are in created_at order).
        recovered = await driver.poll()
        assert ids(recovered) == new
        # 6 crashes, 2 a page, each later page repeating the session the one before ended on: 5 pages.
        assert [r.status for r in list_requests(sim)[requests_before + 2 :]] == [200] * 5
        assert await driver.polls(3) == []
        assert ids(driver.events) == new
        assert store.saved_ids(trigger.state_key) == baseline | set(new)
        await driver.stop()

    run(scenario)


# -- arguments ---------------------------------------------------------------------------------------------


def test_serialize_holds_no_token_and_round_trips(sim):
    trigger = crash_trigger(
        filters={"is_crash": True, "app_version": ["5.2.0"]},
        poll_interval=15,
        lookback=3600,
        page_size=25,
        hook_options={"timeout": 5, "max_retries": 2},
    )
    classpath, kwargs = trigger.serialize()
    module, _, name = classpath.rpartition(".")
    assert getattr(importlib.import_module(module), name) is DevRevNewSessionsTrigger
    text = json.dumps(kwargs)  # JSON-safe as it is
    assert sim.token not in text
    assert "password" not in text
    assert json.loads(text) == kwargs
    rebuilt = DevRevNewSessionsTrigger(**json.loads(text))
    assert rebuilt.serialize() == (classpath, kwargs)
    assert rebuilt.state_key == trigger.state_key
    assert kwargs["filters"] == {"is_crash": True, "app_version": ["5.2.0"]}
    assert (kwargs["poll_interval"], kwargs["lookback"], kwargs["page_size"]) == (15.0, 3600.0, 25)


def test_the_event_trigger_hash_is_stable_across_constructions():
    """Airflow 3 identifies a watcher's trigger by this hash at every DAG parse: it must not drift."""
    import airflow.triggers.base as triggers_base

    first = crash_trigger(filters={"is_crash": True, "app_version": ["5.2.0"]}, poll_interval=60)
    second = crash_trigger(filters={"is_crash": True, "app_version": ["5.2.0"]}, poll_interval=60.0)
    other = crash_trigger(filters={"is_anr": True}, poll_interval=60)
    assert first.serialize() == second.serialize()
    if AIRFLOW_VERSION >= (3, 0):
        base = triggers_base.BaseEventTrigger
        assert isinstance(first, base)
        assert base.hash(*first.serialize()) == base.hash(*second.serialize())
        assert base.hash(*first.serialize()) == base.hash(*DevRevNewSessionsTrigger(**first.serialize()[1]).serialize())
        assert base.hash(*first.serialize()) != base.hash(*other.serialize())
    else:
        # Airflow 2 has no event-driven scheduling: the class is a plain trigger that nothing can watch.
        assert not hasattr(triggers_base, "BaseEventTrigger")
        assert isinstance(first, triggers_base.BaseTrigger)
        assert first.serialize() != other.serialize()


def test_poll_interval_below_the_minimum_is_raised_to_it():
    from airflow_provider_devrev.triggers.devrev import MIN_POLL_WAIT

    assert crash_trigger(poll_interval=0.001).poll_interval == MIN_POLL_WAIT


@pytest.mark.parametrize(
    ("field", "kwargs"),
    [
        ("platform", {"platform": "windows"}),
        ("platform", {"platform": ""}),
        ("version_key", {"version_key": "  "}),
        ("filters", {"filters": ["is_crash"]}),
        ("filters['is_crash']", {"filters": {"is_crash": "yes"}}),
        ("filters['has_console_errors']", {"filters": {"has_console_errors": True}}),  # a web filter
        ("filters['crashed']", {"filters": {"crashed": True}}),
        ("filters['created_at']", {"filters": {"created_at": {"type": "range"}}}),
        ("filters['app_version']", {"filters": {"app_version": "5.2.0"}}),
        ("poll_interval", {"poll_interval": 0}),
        ("poll_interval", {"poll_interval": -5}),
        ("poll_interval", {"poll_interval": True}),
        ("poll_interval", {"poll_interval": "60"}),
        ("lookback", {"lookback": 0}),
        ("lookback", {"lookback": None}),
        ("page_size", {"page_size": 0}),
        ("page_size", {"page_size": 101}),
    ],
)
def test_the_constructor_rejects_bad_arguments_naming_the_field(field, kwargs):
    with pytest.raises(DevRevInvalidInputError) as raised:
        crash_trigger(**kwargs)
    assert field in str(raised.value)


def test_web_filters_are_accepted_for_the_web_platform():
    trigger = crash_trigger(platform="web", filters={"has_console_errors": True})
    assert trigger.serialize()[1]["filters"] == {"has_console_errors": True}


def test_an_unexpected_exception_is_logged_and_retried_not_the_end_of_the_watch(sim, driver, monkeypatch):
    """An event trigger that ends stops its DAG's schedule silently: nothing may end it but cancellation."""
    real = DevRevNewSessionsTrigger._list_unseen
    failures = [RuntimeError("something nobody expected")]

    async def flaky(self, *args, **kwargs):
        if failures:
            raise failures.pop()
        return await real(self, *args, **kwargs)

    monkeypatch.setattr(DevRevNewSessionsTrigger, "_list_unseen", flaky)

    async def scenario():
        driver.watch(crash_trigger(poll_interval=30))
        assert await driver.poll() == []  # the failure: logged, then a wait
        assert driver.sleeps == [30.0]
        assert await driver.poll() == []  # the baseline
        add(sim, driver, "new")
        assert ids(await driver.poll()) == ["new"]
        await driver.stop()

    run(scenario)


# -- credentials -------------------------------------------------------------------------------------------


def test_a_token_rotated_mid_pagination_is_picked_up_without_a_failed_poll(sim, driver, monkeypatch, caplog, capsys):
    new_token = "rotated-" + "0123456789abcdef" * 3

    def rotate() -> None:
        sim.rotate_token(new_token)
        monkeypatch.setenv("AIRFLOW_CONN_DEVREV_DEFAULT", sim.connection_json())

    async def scenario():
        driver.watch(crash_trigger(page_size=2))
        assert await driver.poll() == []
        new = [add(sim, driver, f"new-{n}", age=600 - n)["session_id"] for n in range(3)]
        # The second page of the next poll meets the rotation: the old token is revoked, the connection updated.
        sim.at_request(len(sim.requests) + 2, rotate)
        before = len(list_requests(sim))
        assert ids(await driver.poll()) == new
        poll = list_requests(sim)[before:]
        assert [(r.token, r.status) for r in poll] == [(1, 200), (1, 401)] + [(2, 200)] * (len(poll) - 2)
        assert poll[1].body == poll[2].body, "the same page is asked for again"
        assert driver.sleeps == [60, 60], "no error wait: the poll did not fail"
        assert await driver.poll() == []
        assert {r.token for r in list_requests(sim)[before + len(poll) :]} == {2}
        await driver.stop()

    caplog.set_level(logging.INFO)
    run(scenario)
    text = logged(caplog, capsys)
    assert "DevRev connection devrev_default changed; using the new token" in text
    assert new_token not in text
