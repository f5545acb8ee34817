"""
The watcher's requests per poll and saved-state size, by traffic: counts and bytes, not timings, so it runs the
same on a busy machine.

``python -m bench.watcher_state`` prints a Markdown table for 100, 10,000 and 50,000 sessions per lookback window
(one day), polled every minute for two days with the real :class:`~airflow_provider_devrev.watch_position.
WatchPosition` and the trigger's own rule for what a poll lists: every session created at or after the listing
start, which is what DevRev's ``created_at`` filter returns (the simulator-backed tests in
``tests/triggers/test_new_sessions_scale.py`` check the same bound against real requests). Beside it, what 0.1.0
did: list the whole lookback at every poll and save every id in it.
"""

from __future__ import annotations

import argparse
import bisect
import json
import math
import random
import uuid

from airflow_provider_devrev.watch_position import WatchPosition, seconds_to_micros

DAY = 86400.0
#: Bytes per id in 0.1.0's saved value (the issue's figure, checked: a uuid and its expiry as JSON).
OLD_BYTES_PER_ID = 52


def simulate(per_day: int, *, page_size: int, poll_interval: float, days: int, seed: int) -> dict[str, float]:
    """Requests per poll (mean, max) and saved bytes (max) once the baseline is taken, for ``per_day`` sessions."""
    rng = random.Random(seed)
    start = 1_780_000_000.0
    total = per_day * days
    # Each session created uniformly over the period and uploaded up to ten minutes later.
    created = sorted(start + rng.uniform(0, days * DAY) for _ in range(total))
    sessions = [(str(uuid.UUID(int=rng.getrandbits(128), version=4)), moment) for moment in created]
    uploaded = sorted(((moment + rng.uniform(0, 600), sid, moment) for sid, moment in sessions))
    visible_times: list[float] = []  # created_at of visible sessions, sorted
    visible_ids: list[str] = []
    position = WatchPosition.start(start, DAY)
    requests: list[int] = []
    saved: list[int] = []
    cursor = 0
    now = start
    while now < start + days * DAY:
        now += poll_interval
        while cursor < len(uploaded) and uploaded[cursor][0] <= now:
            _, sid, moment = uploaded[cursor]
            index = bisect.bisect_left(visible_times, moment)
            visible_times.insert(index, moment)
            visible_ids.insert(index, sid)
            cursor += 1
        listed_from = position.listing_start(now, DAY).timestamp()
        first = bisect.bisect_left(visible_times, listed_from)
        listed = list(zip(visible_ids[first:], visible_times[first:], strict=True))
        fresh = [(sid, seconds_to_micros(t)) for sid, t in listed if position.is_new(sid, seconds_to_micros(t))]
        position.record(fresh, overlap=DAY)
        if now >= start + DAY:  # the first day fills the window; measure the steady state after it
            requests.append(max(1, math.ceil(len(listed) / page_size)))
            saved.append(len(json.dumps(position.to_json(), separators=(",", ":"))))
    return {
        "requests_mean": sum(requests) / len(requests),
        "requests_max": max(requests),
        "saved_max": max(saved),
        "old_requests": max(1, math.ceil(per_day / page_size)),
        "old_saved": per_day * OLD_BYTES_PER_ID,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100,10000,50000", help="sessions per lookback window (one day)")
    parser.add_argument("--page-size", type=int, default=100)
    parser.add_argument("--poll-interval", type=float, default=60.0)
    parser.add_argument("--days", type=int, default=2)
    parser.add_argument("--seed", type=int, default=15)
    args = parser.parse_args()
    print(f"Poll every {args.poll_interval:g} s, lookback one day, page size {args.page_size}, default overlap.\n")
    print(
        "| sessions per lookback | requests per poll (mean / max) | saved state, max "
        "| 0.1.0: requests per poll | 0.1.0: saved state |"
    )
    print("|---:|---:|---:|---:|---:|")
    for size in (int(part) for part in args.sizes.split(",")):
        row = simulate(size, page_size=args.page_size, poll_interval=args.poll_interval, days=args.days, seed=args.seed)
        print(
            f"| {size:,} | {row['requests_mean']:.2f} / {row['requests_max']} | {row['saved_max']:,} B "
            f"| {row['old_requests']:,} | {row['old_saved']:,} B |"
        )


if __name__ == "__main__":
    main()
