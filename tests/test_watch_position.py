"""WatchPosition: what the watcher saves, when it counts a session as new, and how big it may grow."""

from __future__ import annotations

import json
import random
import uuid
from datetime import UTC, datetime

import pytest

from airflow_provider_devrev.watch_position import (
    MAX_CLOCK_SKEW,
    MAX_RECENT_IDS,
    STATE_VERSION,
    WatchPosition,
    from_micros,
    seconds_to_micros,
    to_micros,
)

NOW = 1_780_000_000.0
HOUR = 3600.0
DAY = 86400.0
#: The saved value's ceiling: 64 ids of 36 characters (DevRev's uuid-shaped ids) with their times.
MAX_SAVED_BYTES = 4096


def us(seconds_ago: float) -> int:
    return seconds_to_micros(NOW - seconds_ago)


def saved_size(position: WatchPosition) -> int:
    return len(json.dumps(position.to_json(), separators=(",", ":")))


def uuid_like(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def test_micros_are_exact_both_ways():
    moment = datetime(2026, 2, 1, 23, 59, 59, 999999, tzinfo=UTC)
    assert from_micros(to_micros(moment)) == moment
    assert to_micros(moment) - to_micros(datetime(2026, 2, 1, tzinfo=UTC)) == 86_400_000_000 - 1


def test_a_new_watch_lists_its_whole_lookback_once_then_from_the_high_water_mark_minus_the_overlap():
    position = WatchPosition.start(NOW, DAY)
    assert position.listing_start(NOW, DAY) == from_micros(us(DAY))
    position.record([("a", us(3 * HOUR)), ("b", us(HOUR))], overlap=2 * HOUR)
    assert position.high_water == us(HOUR)
    assert position.floor == us(3 * HOUR)  # high_water - overlap
    assert position.listing_start(NOW, DAY) == from_micros(us(3 * HOUR))
    assert set(position.recent) == {"a", "b"}  # "a" sits exactly on the floor: kept, since the floor is inclusive
    position.record([("c", us(0))], overlap=2 * HOUR)
    assert set(position.recent) == {"b", "c"}
    # Never earlier than the lookback, whatever the floor.
    assert position.listing_start(NOW + 2 * DAY, DAY) == from_micros(us(-DAY))


def test_what_counts_as_new():
    position = WatchPosition(floor=us(HOUR), recent={"seen": us(30)})
    assert not position.is_new("seen", us(30))
    assert position.is_new("other", us(30))
    assert position.is_new("on-the-floor", us(HOUR))
    assert not position.is_new("below-the-floor", us(HOUR) - 1), "may have been reported and dropped"


def test_the_floor_never_moves_down():
    position = WatchPosition(floor=us(HOUR))
    position.record([("old-late-upload", us(5 * HOUR))], overlap=DAY)
    assert position.floor == us(HOUR)
    assert position.recent == {}


def test_the_bound_keeps_the_newest_ids_and_raises_the_floor_past_the_rest():
    position = WatchPosition.start(NOW, DAY)
    dropped = position.record([(f"s{n:03d}", us(1000 - n)) for n in range(200)], overlap=DAY)
    assert dropped == 200 - MAX_RECENT_IDS
    assert len(position) == MAX_RECENT_IDS
    assert set(position.recent) == {f"s{n:03d}" for n in range(200 - MAX_RECENT_IDS, 200)}
    assert position.floor == min(position.recent.values())


def test_ids_tied_on_the_bound_are_dropped_together_so_none_is_reported_twice():
    position = WatchPosition.start(NOW, DAY)
    newest = [(f"new-{n}", us(n)) for n in range(MAX_RECENT_IDS - 1)]
    tied = [(f"tied-{n}", us(500)) for n in range(3)]
    position.record([*newest, *tied], overlap=DAY)
    assert set(position.recent) == {key for key, _ in newest}
    assert position.floor == us(500) + 1
    assert not any(position.is_new(key, created) for key, created in tied), "a tied id would come back as new"


def test_the_saved_value_round_trips_and_stays_small_whatever_the_traffic():
    rng = random.Random(15)
    position = WatchPosition.start(NOW, DAY)
    largest = 0
    for batch in range(200):
        sessions = [(uuid_like(rng), us(DAY - batch * 400 - n)) for n in range(rng.randint(0, 300))]
        position.record(sessions, overlap=DAY)
        largest = max(largest, saved_size(position))
        restored = WatchPosition.from_json(json.loads(json.dumps(position.to_json())), now=NOW, lookback=DAY)
        assert restored == position
    assert largest <= MAX_SAVED_BYTES
    assert position.to_json()["version"] == STATE_VERSION


def test_a_saved_value_is_a_snapshot_that_later_polls_leave_as_it_was():
    # The trigger keeps a poll's value until that poll's events have left; the next poll's sessions, still
    # queued, must not creep into it (issue 27: a restart from it lost them).
    position = WatchPosition(floor=us(HOUR))
    position.record([("first", us(60))], overlap=DAY, now=NOW)
    snapshot = position.to_json()
    kept = json.loads(json.dumps(snapshot))
    position.record([("second", us(30))], overlap=DAY, now=NOW)
    position.record([], overlap=10.0, now=NOW)  # the floor passes "first": dropped from the position only
    assert snapshot == kept
    snapshot["recent"]["edited"] = us(10)
    assert "edited" not in position.recent
    assert set(position.to_json()["recent"]) == {"second"}


def test_a_version_1_value_becomes_a_position_over_the_lookback_it_was_saved_with():
    saved = {"version": 1, "expiries": {"a": NOW + 100, "b": NOW + DAY}, "lookback": HOUR}
    position = WatchPosition.from_json(saved, now=NOW, lookback=DAY)
    assert position is not None
    assert position.floor == us(HOUR)  # the old window, not the (longer) new lookback
    assert not position.is_new("a", us(HOUR))
    assert not position.is_new("b", us(0))
    # The next record shrinks it to the bound like any other position.
    position.record([(f"n{n}", us(n)) for n in range(100)], overlap=HOUR)
    assert len(position) == MAX_RECENT_IDS


@pytest.mark.parametrize(
    "damaged",
    [
        None,
        "text",
        [],
        {},
        {"version": 3, "floor": 1, "recent": {}},
        {"version": 2, "floor": "1", "recent": {}},
        {"version": 2, "floor": True, "recent": {}},
        {"version": 2, "floor": 1, "recent": []},
        {"version": 2, "floor": 1, "recent": {"a": 1.5}},
        {"version": 2, "floor": 1, "high_water": "x", "recent": {}},
        {"version": 1, "expiries": ["a"]},
        {"version": 1, "expiries": {"a": True}},
    ],
)
def test_anything_it_did_not_write_is_refused(damaged):
    assert WatchPosition.from_json(damaged, now=NOW, lookback=DAY) is None


def test_a_future_dated_session_does_not_lift_the_floor_past_honest_ones():
    """A device whose clock runs a year fast uploads a session: the watch must keep reporting the others."""
    position = WatchPosition.start(NOW, DAY)
    year = 365 * DAY
    position.record([("from-the-future", us(-year)), ("honest", us(60))], overlap=HOUR, now=NOW)
    assert position.high_water == seconds_to_micros(NOW + MAX_CLOCK_SKEW)
    assert position.floor <= us(HOUR - MAX_CLOCK_SKEW)
    assert position.is_new("next-honest", us(30))
    assert not position.is_new("from-the-future", us(-year))
    # 100 future-dated sessions are kept beside the bound (as reported ids); the floor follows the clock.
    assert position.record([(f"future-{n}", us(-year - n)) for n in range(100)], overlap=HOUR, now=NOW + 60) == 0
    assert position.floor == seconds_to_micros(NOW + 60 + MAX_CLOCK_SKEW - HOUR)
    assert position.is_new("honest-after", us(-120))
    assert not position.is_new("future-50", us(-year - 50))
