"""
DevRevNewSessionsTrigger at scale, against the real simulator on loopback, one poll at a time on a fake clock
(the Driver of test_new_sessions_trigger.py): flat state, flat cost per poll, and bursts that never stop
polling.
"""

from __future__ import annotations

import json
import math
import os
import random
import uuid
from datetime import UTC, datetime

import pytest

from airflow_provider_devrev.testing.data import SEED_VERSION_KEY
from airflow_provider_devrev.triggers.devrev import DevRevNewSessionsTrigger
from airflow_provider_devrev.watch_position import MAX_RECENT_IDS
from tests.triggers.test_new_sessions_trigger import T0, Driver, FakeStateStore, ids, list_requests, run

pytestmark = pytest.mark.devrev_simulator(seed_data=False)

HOUR = 3600.0
WEEK = 7 * 86400.0
PAGE = 100
#: The saved value's ceiling: MAX_RECENT_IDS uuid-shaped ids with their created_at, and the two marks.
MAX_SAVED_BYTES = 4096


@pytest.fixture
def driver(monkeypatch) -> Driver:
    fake = Driver(start=T0)
    monkeypatch.setattr(DevRevNewSessionsTrigger, "clock", staticmethod(fake.time))
    monkeypatch.setattr(DevRevNewSessionsTrigger, "sleep", staticmethod(fake.sleep))
    return fake


def uuid_like(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def upload(sim, session_id: str, created: float) -> None:
    """A minimal contract-valid android crash session, visible from now."""
    created_at = datetime.fromtimestamp(created, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    session = {"type": "mobile", "session_id": session_id, "platform": "android", "created_at": created_at}
    sim.add_session({**session, "is_crash": True}, version_key=SEED_VERSION_KEY)


def watcher(**kwargs) -> DevRevNewSessionsTrigger:
    options = {
        "platform": "android",
        "version_key": SEED_VERSION_KEY,
        "filters": {"is_crash": True},
        "page_size": PAGE,
        "event_spacing": 0,
        **kwargs,
    }
    return DevRevNewSessionsTrigger(**options)


def saved_bytes(store: FakeStateStore) -> list[int]:
    return [len(json.dumps(value, separators=(",", ":"))) for _, value in store.sets]


def test_a_week_of_50000_sessions_fires_each_once_with_flat_state_and_flat_requests_per_poll(devrev_simulator, driver):
    sim, rng = devrev_simulator, random.Random(15)
    total = int(os.environ.get("I15_TOTAL", "50000"))
    polls = int(WEEK // HOUR)
    per_poll = [total // polls + (1 if n < total % polls else 0) for n in range(polls)]

    async def scenario():
        trigger = watcher(poll_interval=HOUR, lookback=WEEK)
        trigger.asset_state_store = store = FakeStateStore()
        driver.watch(trigger)
        assert await driver.poll() == []  # the baseline: nothing exists yet
        uploaded: list[str] = []
        requests_per_poll: list[tuple[int, int]] = []
        for count in per_poll:
            # Uploaded during the hour before this poll, each up to a minute after it was created.
            for _ in range(count):
                session_id = uuid_like(rng)
                upload(sim, session_id, driver.now - rng.uniform(0, HOUR - 60) - rng.uniform(0, 60))
                uploaded.append(session_id)
            before = len(list_requests(sim))
            await driver.poll()
            requests_per_poll.append((count, len(list_requests(sim)) - before))
        assert await driver.poll() == []  # saves the last poll's position
        await driver.stop()

        fired = ids(driver.events)
        assert len(fired) == len(set(fired)), "a session fired twice"
        assert set(fired) == set(uploaded), "a session was missed"
        # At most the kept ids plus the new sessions come back: one request per page of those.
        for new, requests in requests_per_poll:
            assert requests <= math.ceil((MAX_RECENT_IDS + new) / PAGE), (new, requests)
        assert len(store.sets) >= polls
        assert max(saved_bytes(store)) <= MAX_SAVED_BYTES

    run(scenario)


def test_a_late_upload_fires_while_it_is_within_the_overlap_and_never_once_below_the_floor(devrev_simulator, driver):
    sim = devrev_simulator

    async def scenario():
        driver.watch(watcher(poll_interval=60, lookback=86400, overlap=2 * HOUR))
        assert await driver.poll() == []
        upload(sim, "newest", driver.now - 10)
        assert ids(await driver.poll()) == ["newest"]
        upload(sim, "late-within-overlap", driver.now - 1.5 * HOUR)  # a crash reported at the next launch
        upload(sim, "late-below-floor", driver.now - 3 * HOUR)  # below newest - overlap: not listed any more
        assert ids(await driver.poll()) == ["late-within-overlap"]
        assert await driver.polls(3) == []
        # Under heavy traffic the bound narrows the window to the newest MAX_RECENT_IDS sessions.
        burst_start = driver.now - 30
        for n in range(MAX_RECENT_IDS + 10):
            upload(sim, f"burst-{n:03d}", burst_start + n * 0.1)
        assert len(await driver.poll()) == MAX_RECENT_IDS + 10
        upload(sim, "late-behind-the-burst", burst_start + 0.55)  # among the 10 oldest, which were dropped
        upload(sim, "late-among-the-kept", burst_start + 20.55)  # among the 64 newest, which were kept
        assert ids(await driver.polls(3)) == ["late-among-the-kept"]
        fired = ids(driver.events)
        assert "late-behind-the-burst" not in fired
        assert "late-below-floor" not in fired
        assert len(fired) == len(set(fired))
        await driver.stop()

    run(scenario)


def test_a_burst_of_1000_is_handed_over_at_the_chosen_rate_while_polling_goes_on(devrev_simulator, driver):
    sim = devrev_simulator
    spacing = 0.05

    async def scenario():
        driver.watch(watcher(poll_interval=20, event_spacing=spacing))
        assert await driver.poll() == []
        for n in range(1000):
            upload(sim, f"burst-{n:04d}", driver.now - 5 - n * 0.001)
        polled_at = driver.now
        fired_at: list[float] = []
        requests_at: list[float] = []
        seen_requests = len(list_requests(sim))
        upload_during_burst = False
        while len(fired_at) < 1000:
            events = await driver.poll()
            fired_at += [driver.now - (driver.sleeps[-1] if events else 0)] * len(events)
            if len(list_requests(sim)) > seen_requests:
                requests_at.append(driver.now)
                seen_requests = len(list_requests(sim))
            if not upload_during_burst and len(fired_at) > 500:
                upload(sim, "during-the-burst", driver.now - 1)
                upload_during_burst = True
        events = await driver.polls(50)
        assert "during-the-burst" in ids(driver.events)
        fired = ids(driver.events)
        assert len(fired) == len(set(fired)) == 1001
        # Every one of the 1000 within 1000 spacings of its poll; polls went on meanwhile (every 20 s).
        assert max(fired_at) - polled_at <= 1000 * spacing + 1e-6
        assert len([moment for moment in requests_at if moment < polled_at + 1000 * spacing]) >= 2
        await driver.stop()

    run(scenario)


def test_batch_fires_one_event_per_poll_holding_all_its_new_sessions(devrev_simulator, driver):
    sim = devrev_simulator

    async def scenario():
        trigger = watcher(poll_interval=60, batch=True, event_spacing=5)
        assert trigger.serialize()[1]["batch"] is True
        driver.watch(trigger)
        assert await driver.poll() == []
        for n in range(1000):
            upload(sim, f"s-{n:04d}", driver.now - 30 + n * 0.001)
        [event] = await driver.poll()
        assert len(event["sessions"]) == 1000
        assert event["session_ids"] == [f"s-{n:04d}" for n in range(1000)]
        assert [session["session_id"] for session in event["sessions"]] == event["session_ids"]
        assert driver.sleeps[-1] == 60
        assert await driver.poll() == []
        await driver.stop()

    run(scenario)


def test_new_arguments_at_their_defaults_keep_the_serialized_identity():
    """A watcher declared before overlap and batch existed serializes exactly as it did."""
    kwargs = watcher().serialize()[1]
    assert "overlap" not in kwargs
    assert "batch" not in kwargs
    assert watcher(overlap=600).serialize()[1]["overlap"] == 600.0
