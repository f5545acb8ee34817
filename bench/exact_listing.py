"""
Exact listings under unkind cursors (issue 28), counted, not timed: for a day of sessions with some uploaded
and some deleted while it is listed, per simulator cursor mode and order, the sessions written, duplicated and
missed by the listing that followed DevRev's cursor (before) and by ``iter_sessions`` (after), and requests per
session listed. No Airflow, no network beyond the simulator on 127.0.0.1; about a minute.

    python -m bench.exact_listing [--sessions 10000] [--inserts 100] [--deletes 20] [--page-size 100] [--seed 0]

``created_at`` is drawn in whole seconds over the day, as an SDK stamping seconds would: ties across a page
boundary are what a cursor without a tie-break trips on.
"""

from __future__ import annotations

import argparse
import os
import random
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow_provider_devrev.hooks.devrev import DevRevHook
from airflow_provider_devrev.listing import CursorTrail, SessionQuery, parse_page, session_query
from airflow_provider_devrev.testing import DevRevSimulator

DAY = datetime(2025, 3, 1, tzinfo=UTC)
VK = "bench@1"


def cursor_following(hook: DevRevHook, query: SessionQuery) -> Iterator[dict[str, Any]]:
    """The listing before issue 28: follow ``next_cursor`` from the first page to the last."""
    trail = CursorTrail()
    while True:
        request = query.page_request(trail.current)
        page = parse_page(request, hook.call(request))
        yield from (session for session in page.sessions if query.in_interval(session))
        if not trail.advance(request, page.next_cursor):
            return


def iso(seconds: int) -> str:
    return (DAY + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def run(mode: str, order: str, method: str, args: argparse.Namespace) -> dict[str, Any]:
    """One listing of the day; returns its counts."""
    rng = random.Random(args.seed)
    pages = max(2, args.sessions // args.page_size)
    schedule: dict[int, list[Callable[[], Any]]] = {}
    with DevRevSimulator(seed_data=False, cursor_mode=mode, order=order, page_size=args.page_size) as sim:
        initial = [f"s{n:06d}" for n in range(args.sessions)]
        for session_id in initial:
            moment = iso(rng.randrange(86_400))
            sim.add_session(sim.make_session("mobile", session_id=session_id, created_at=moment), version_key=VK)
        deleted = set(rng.sample(initial, args.deletes))
        inserted = [f"late{n:04d}" for n in range(args.inserts)]
        for victim in deleted:
            schedule.setdefault(rng.randrange(2, pages), []).append(lambda victim=victim: sim.remove_session(victim))
        for session_id in inserted:
            made = sim.make_session("mobile", session_id=session_id, created_at=iso(rng.randrange(86_400)))
            add = lambda made=made: sim.add_session(made, version_key=VK)  # noqa: E731
            schedule.setdefault(rng.randrange(2, pages), []).append(add)
        sim.on_page(lambda number: [action() for action in schedule.pop(number, [])])
        os.environ["AIRFLOW_CONN_DEVREV_DEFAULT"] = sim.connection_json()
        hook = DevRevHook()
        bounds = {"created_after": DAY, "created_before": DAY + timedelta(days=1), "page_size": args.page_size}
        if method == "before":
            listing = cursor_following(hook, session_query("android", VK, **bounds))
        else:
            listing = hook.iter_sessions("android", VK, **bounds)
        counts = Counter(session["session_id"] for session in listing)
        requests = len(sim.requests_for(path="/observability.sessions.list"))
    throughout = set(initial) - deleted
    return {
        "written": sum(counts.values()),
        "distinct": len(counts),
        "duplicated": sum(count - 1 for count in counts.values() if count > 1),
        "missed": len(throughout - set(counts)),
        "inserts written": len(set(inserted) & set(counts)),
        "requests": requests,
        "requests/1,000 sessions": 1000 * requests / max(1, sum(counts.values())),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.exact_listing", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=10_000)
    parser.add_argument("--inserts", type=int, default=100)
    parser.add_argument("--deletes", type=int, default=20)
    parser.add_argument("--page-size", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--orders", default="asc,desc")
    args = parser.parse_args(argv)
    print(
        f"{args.sessions:,} sessions in one day (created_at in whole seconds), {args.inserts} uploaded and "
        f"{args.deletes} deleted during the listing, page size {args.page_size}, seed {args.seed}\n"
    )
    print("| cursor | order | listing | written | duplicated | missed | inserts written | requests | per 1,000 |")
    print("|---|---|---|---|---|---|---|---|---|")
    for mode in ("keyset", "keyset_no_tiebreak", "offset"):
        for order in args.orders.split(","):
            for method in ("before", "after"):
                row = run(mode, order, method, args)
                print(
                    f"| {mode} | {order} | {method} | {row['written']:,} | {row['duplicated']} | {row['missed']} | "
                    f"{row['inserts written']} | {row['requests']} | {row['requests/1,000 sessions']:.2f} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
