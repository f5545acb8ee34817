"""DevRevHook.iter_sessions / aiter_sessions against the simulator over real HTTP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import gc
import json
import math
import time
import tracemalloc
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pendulum
import pytest
import requests

from airflow_provider_devrev.exceptions import (
    DevRevAuthError,
    DevRevBadRequestError,
    DevRevInvalidInputError,
    DevRevServerError,
    DevRevUnexpectedResponseError,
)
from airflow_provider_devrev.hooks import _rate_gate
from airflow_provider_devrev.hooks.devrev import DevRevHook
from airflow_provider_devrev.listing import created_at_of, format_timestamp, session_query
from airflow_provider_devrev.testing import DevRevSimulator
from tests.fakes import FakeSleep

LIST = "/observability.sessions.list"
VK = "com.acme.shop@5.2.0"
UTC = UTC
T0 = datetime(2025, 3, 1, tzinfo=UTC)
MS = timedelta(milliseconds=1)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def started(page_size: int = 10) -> DevRevSimulator:
    return DevRevSimulator(page_size=page_size, seed_data=False).start()


@pytest.fixture
def sim(monkeypatch) -> Iterator[DevRevSimulator]:
    simulator = started()
    try:
        monkeypatch.setenv("AIRFLOW_CONN_DEVREV_DEFAULT", simulator.connection_json())
        yield simulator
    finally:
        simulator.stop()


@pytest.fixture
def sleep() -> FakeSleep:
    return FakeSleep()


@pytest.fixture
def hook(sim, sleep) -> DevRevHook:
    return DevRevHook(sleep=sleep)


def add_at(
    sim: DevRevSimulator,
    moments: list[datetime],
    *,
    version_key: str = VK,
    kind: str = "mobile",
    platform: str | None = "android",
    overrides: Callable[[int], dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    added = []
    for index, moment in enumerate(moments):
        extra = overrides(index) if overrides else {}
        session = sim.make_session(kind, platform=platform, created_at=iso(moment), **extra)
        added.append(sim.add_session(session, version_key=version_key))
    return added


def in_sim_order(sim: DevRevSimulator, sessions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``sessions`` in the order the simulator lists them (created_at, then session_id)."""
    wanted = {session["session_id"] for session in sessions}
    return [session for session in sim.sessions if session["session_id"] in wanted]


def ids(sessions: list[dict[str, Any]]) -> list[str]:
    return [session["session_id"] for session in sessions]


def field_of(request: Any, name: str) -> Any:
    return request.query.get(name) if request.method == "GET" else request.body.get(name)


def cursor_of(request: Any) -> str | None:
    """Where a page starts: the exact listing asks by created_at range (and follows a cursor only inside one
    instant), so a page's position is its cursor and its range together."""
    return json.dumps([field_of(request, "cursor"), field_of(request, "created_at")])


def list_requests(sim: DevRevSimulator) -> list[Any]:
    return sim.requests_for(path=LIST)


# -- paging ------------------------------------------------------------------------------------------


def test_pages_through_thousands_once_each_in_order_with_flat_memory(monkeypatch):
    small, big = 500, 3_000
    later = T0 + timedelta(days=1)
    with DevRevSimulator(page_size=100, seed_data=False) as sim:
        monkeypatch.setenv("AIRFLOW_CONN_DEVREV_DEFAULT", sim.connection_json())
        # Many equal timestamps, so the session_id tie-break matters; many recordings, so that what memory
        # measures is sessions held (not the simulator's own per-request bookkeeping, which is in-process).
        recordings = {"recording_ids": [f"rec_{index:012x}" for index in range(40)]}
        add_at(sim, [T0 + timedelta(seconds=i // 3) for i in range(small)], version_key="small@1",
               overrides=lambda _: recordings)  # fmt: skip
        add_at(sim, [later + timedelta(seconds=i // 3) for i in range(big)], version_key="big@1",
               overrides=lambda _: recordings)  # fmt: skip
        in_order = [(s["session_id"], s["created_at"] < iso(later)) for s in sim.sessions]
        expected = {
            "small@1": [session_id for session_id, is_small in in_order if is_small],
            "big@1": [session_id for session_id, is_small in in_order if not is_small],
        }
        del in_order
        hook = DevRevHook()
        # Connection lookup, imports and the keep-alive connection happen here, untraced.
        assert ids(list(hook.iter_sessions("android", "small@1"))) == expected["small@1"]
        sim.clear_requests()

        def consume(version_key: str) -> Callable[[], int]:
            def run() -> int:
                order = expected[version_key]
                count = 0
                for session in hook.iter_sessions("android", version_key):
                    assert session["session_id"] == order[count]
                    count += 1
                return count

            return run

        def hold_all(version_key: str) -> Callable[[], int]:
            def run() -> int:
                return len(list(hook.iter_sessions("android", version_key)))

            return run

        count_small, peak_small = traced_peak(consume("small@1"))
        count_big, peak_big = traced_peak(consume("big@1"))
        # The measurement does see a client that keeps every session: that grows about 6 times here.
        held_small, held_peak_small = traced_peak(hold_all("small@1"))
        held_big, held_peak_big = traced_peak(hold_all("big@1"))
        made = sim.requests

    assert (count_small, count_big) == (small, big)  # each exactly once, in the simulator's order
    assert (held_small, held_big) == (small, big)
    assert peak_big / peak_small < 1.5, (peak_small, peak_big)
    assert held_peak_big / held_peak_small > 3, (held_peak_small, held_peak_big)
    big_pages = [r for r in made if field_of(r, "version_key") == "big@1"]
    big_pages = big_pages[: len(big_pages) // 2]  # consume's listing, not hold_all's
    # Each later page starts at the instant the one before ended on, so it repeats that instant's sessions
    # (here at most 3 of 100): a page and a little more per hundred sessions.
    assert big // 100 < len(big_pages) <= math.ceil(big / 97)
    assert [(r.method, r.status) for r in big_pages] == [("GET", 200)] + [("POST", 200)] * (len(big_pages) - 1)
    positions = [cursor_of(r) for r in big_pages]
    assert len(set(positions)) == len(positions)  # every page asked for once, each from a new position
    assert all(field_of(r, "limit") is None for r in big_pages)  # no page_size given: the server's default


def traced_peak(run: Callable[[], int]) -> tuple[int, int]:
    gc.collect()
    tracemalloc.start()
    try:
        result = run()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_plain_listing_gets_every_page_from_where_the_previous_ended(sim, hook):
    sessions = add_at(sim, [T0 + timedelta(seconds=i) for i in range(25)])
    add_at(sim, [T0] * 3, platform="ios")  # same version key, other platform
    add_at(sim, [T0] * 3, version_key="other@1")

    got = list(hook.iter_sessions("android", VK, page_size=7))

    assert got == in_sim_order(sim, sessions)
    requests_made = list_requests(sim)
    # The first page in the plain GET form; each later one (POST: only it has a range) from the instant the
    # page before ended on, whose session it repeats and the hook does not yield again.
    assert [r.method for r in requests_made] == ["GET"] + ["POST"] * 3
    assert [str(field_of(r, "limit")) for r in requests_made] == ["7"] * 4
    assert all((field_of(r, "platform"), field_of(r, "version_key")) == ("android", VK) for r in requests_made)
    assert [field_of(r, "created_at") for r in requests_made[1:]] == [
        {"type": "range", "after": format_timestamp(created_at_of(got[index]))}
        for index in (6, 12, 18)  # type: ignore[arg-type]
    ]
    assert all(field_of(r, "cursor") is None for r in requests_made)


def test_empty_listing_is_one_request(sim, hook):
    assert list(hook.iter_sessions("web", VK)) == []
    assert len(list_requests(sim)) == 1


def test_iteration_is_lazy(sim, hook):
    add_at(sim, [T0 + timedelta(seconds=i) for i in range(25)])

    iterator = hook.iter_sessions("android", VK)
    assert sim.requests == []
    [next(iterator) for _ in range(10)]
    assert len(list_requests(sim)) == 1
    next(iterator)
    assert len(list_requests(sim)) == 2


# -- filters and dates -------------------------------------------------------------------------------

FILTER_CASES = {
    "mobile": (
        "android",
        lambda i: {"is_crash": i % 2 == 0, "device_metadata": {"app_version": ("5.2.0", "5.2.1", "5.3.0")[i % 3]}},
        {"is_crash": True, "app_version": ["5.2.0", "5.3.0"]},
        lambda s: s["is_crash"] and s["device_metadata"]["app_version"] in ("5.2.0", "5.3.0"),
    ),
    "web": (
        "web",
        lambda i: {"rage_click_count": i % 2, "device_metadata": {"browser": ("Chrome", "Safari", "Firefox")[i % 3]}},
        {"has_rage_clicks": False, "browser": ["Chrome", "Firefox"]},
        lambda s: s["rage_click_count"] == 0 and s["device_metadata"]["browser"] in ("Chrome", "Firefox"),
    ),
}


@pytest.mark.parametrize("kind", sorted(FILTER_CASES))
def test_filters_and_dates_post_the_right_body(sim, hook, kind):
    platform, make, filters, matches = FILTER_CASES[kind]
    moments = [T0 + timedelta(minutes=i) for i in range(72)]
    sessions = add_at(sim, moments, kind=kind, platform=platform, overrides=make)
    add_at(sim, moments[:6], kind=kind, platform=platform, version_key="other@1", overrides=make)
    if kind == "mobile":
        add_at(sim, moments[:6], platform="ios", overrides=make)
    after, before = T0 + timedelta(minutes=12), T0 + timedelta(minutes=60)  # both on sessions that match

    got = list(
        hook.iter_sessions(platform, VK, filters=filters, created_after=after, created_before=before, page_size=4)
    )

    expected = [
        s
        for s in in_sim_order(sim, sessions)
        if matches(s) and after <= datetime.fromisoformat(s["created_at"]) < before
    ]
    assert got == expected
    assert len(expected) >= 10
    assert got[0]["created_at"] == iso(after)
    at_before = [s for s in sessions if s["created_at"] == iso(before)]
    assert matches(at_before[0]), "the session at created_before matches the filters: only the interval drops it"
    made = list_requests(sim)
    assert {r.method for r in made} == {"POST"}
    first_body = {
        "type": kind,
        "platform": platform,
        "version_key": VK,
        **filters,
        "created_at": {
            "type": "range",
            "after": "2025-03-01T00:12:00.000000Z",
            "before": "2025-03-01T00:59:59.999999999Z",  # inclusive: the last nanosecond before created_before
        },
        "limit": 4,
    }
    assert made[0].body == first_body
    assert made[0].query == {}
    starts = []
    for request in made[1:]:
        created_at = {**first_body["created_at"], "after": request.body["created_at"]["after"]}  # type: ignore[dict-item]
        assert request.body == {**first_body, "created_at": created_at}
        starts.append(request.body["created_at"]["after"])
    assert starts == sorted(set(starts))  # each page starts later than the one before
    # The range ends just before created_before, so the server never sends the session there. The first page
    # brings 4, each later one 3 and the session the one before ended on.
    assert len(made) == 1 + math.ceil((len(expected) - 4) / 3)
    assert all(r.status == 200 for r in made)


def test_dates_alone_post_with_type_from_platform(sim, hook):
    sessions = add_at(sim, [T0 + timedelta(minutes=i) for i in range(10)], platform="ios")

    got = list(hook.iter_sessions("ios", VK, created_after=T0 + timedelta(minutes=3)))

    assert got == in_sim_order(sim, sessions)[3:]
    [request] = list_requests(sim)
    assert request.body == {
        "type": "mobile",
        "platform": "ios",
        "version_key": VK,
        "created_at": {"type": "range", "after": "2025-03-01T00:03:00.000000Z"},
    }


# -- interval boundaries -----------------------------------------------------------------------------

EDGES = [T0 + timedelta(hours=h) for h in range(4)]  # a, b, c, d


def boundary_moments() -> list[datetime]:
    moments = []
    for edge in EDGES:
        moments += [edge - MS, edge, edge, edge + MS]  # two sessions exactly on each edge
    moments += [EDGES[0] + timedelta(minutes=30), EDGES[2] + timedelta(minutes=1), EDGES[0] - timedelta(days=1)]
    return moments


def test_session_at_created_before_is_excluded_and_at_created_after_included(sim, hook):
    sessions = add_at(sim, boundary_moments())
    a, b = EDGES[0], EDGES[1]

    got = list(hook.iter_sessions("android", VK, created_after=a, created_before=b, page_size=3))

    created = [datetime.fromisoformat(s["created_at"]) for s in got]
    assert created == sorted(created)
    assert created.count(a) == 2
    assert b not in created
    assert created[-1] == b - MS
    assert got == [s for s in in_sim_order(sim, sessions) if a <= datetime.fromisoformat(s["created_at"]) < b]
    # DevRev's range is inclusive, so the hook ends it just before b: the server does not even send the
    # sessions at b, the next interval's (asked with b itself, it does).
    body = {**list_requests(sim)[0].body, "limit": 100}
    body.pop("cursor", None)
    answer = requests.post(sim.url + LIST, json=body, headers={"Authorization": f"Bearer {sim.token}"}, timeout=10)
    assert [s["created_at"] for s in answer.json()["sessions"]].count(iso(b)) == 0
    body["created_at"] = {**body["created_at"], "before": iso(b)}
    answer = requests.post(sim.url + LIST, json=body, headers={"Authorization": f"Bearer {sim.token}"}, timeout=10)
    assert [s["created_at"] for s in answer.json()["sessions"]].count(iso(b)) == 2


def test_consecutive_intervals_return_each_session_exactly_once(sim, hook):
    sessions = add_at(sim, boundary_moments())
    a, b, c, d = EDGES
    intervals = [
        (a, b),  # datetimes
        (pendulum.instance(b), pendulum.instance(c).in_timezone("Asia/Kolkata")),  # Airflow's data intervals
        (c.isoformat(), d.astimezone(timezone(timedelta(hours=-5))).isoformat()),  # text
    ]

    per_interval = [
        ids(list(hook.iter_sessions("android", VK, created_after=lo, created_before=hi, page_size=2)))
        for lo, hi in intervals
    ]

    everything = [session_id for chunk in per_interval for session_id in chunk]
    in_range = [s for s in in_sim_order(sim, sessions) if a <= datetime.fromisoformat(s["created_at"]) < d]
    assert everything == ids(in_range)  # each once, none missing, in order
    # a, a, a+ | b-, b, b, b+ | c-, c, c, c+ | d- and two in between; not a- nor anything at d or later
    assert len(everything) == len(set(everything)) == 14
    by_id = {s["session_id"]: s for s in sessions}
    for chunk, lo in zip(per_interval, [a, b, c], strict=True):
        firsts = [datetime.fromisoformat(by_id[i]["created_at"]) for i in chunk[:2]]
        assert firsts == [lo, lo], "the sessions exactly on an interval's start belong to it"


# -- retries mid-pagination --------------------------------------------------------------------------


@pytest.mark.parametrize("form", ["GET", "POST"])
def test_rate_limit_mid_pagination_retries_the_same_cursor(sim, hook, sleep, form, monkeypatch):
    # Time passes as the hook sleeps, for the connection's shared pause too: the next page is not held by it.
    monkeypatch.setattr(_rate_gate, "now", lambda: time.time() + sum(sleep.waits))
    sessions = add_at(sim, [T0 + timedelta(seconds=i) for i in range(35)])
    kwargs: dict[str, Any] = {"created_after": T0} if form == "POST" else {}
    iterator = hook.iter_sessions("android", VK, **kwargs)

    got = [next(iterator) for _ in range(11)]  # page 1 and the first session of page 2: two requests
    assert len(list_requests(sim)) == 2
    sim.add_fault("rate_limit", path=LIST, retry_after=7)  # so the 3rd list request gets 429
    got += list(iterator)

    assert got == in_sim_order(sim, sessions)  # nothing skipped, nothing repeated
    made = list_requests(sim)
    assert [r.status for r in made] == [200, 200, 429, 200, 200]
    assert [r.method for r in made] == [form] + ["POST"] * 4
    assert made[2].fault == "rate_limit"
    assert cursor_of(made[2]) is not None
    assert cursor_of(made[3]) == cursor_of(made[2])  # the retry asks for the same page
    assert cursor_of(made[2]) != cursor_of(made[1])
    assert sleep.waits == [7.0]  # DevRev's Retry-After, no shorter


@pytest.mark.parametrize(
    ("fault", "params"),
    [("server_error", {"status": 503}), ("server_error", {"status": 502}), ("drop", {})],
)
def test_transient_failures_mid_pagination_retry_the_same_cursor(sim, hook, sleep, fault, params):
    sessions = add_at(sim, [T0 + timedelta(seconds=i) for i in range(25)])
    iterator = hook.iter_sessions("android", VK)
    got = [next(iterator) for _ in range(11)]
    sim.add_fault(fault, path=LIST, times=2, **params)
    got += list(iterator)

    assert got == in_sim_order(sim, sessions)
    made = list_requests(sim)
    assert [r.fault for r in made] == [None, None, fault, fault, None]
    assert cursor_of(made[2]) == cursor_of(made[3]) == cursor_of(made[4]) != cursor_of(made[1])
    assert cursor_of(made[2]) is not None
    assert len(sleep.waits) == 2
    assert all(wait > 0 for wait in sleep.waits)


# -- final errors ------------------------------------------------------------------------------------


def _revoke(sim: DevRevSimulator) -> None:
    sim.revoke_token()


def _bad_request(sim: DevRevSimulator) -> None:
    body = {"type": "invalid_field", "message": "cursor expired", "field_name": "cursor"}
    sim.add_fault("status", path=LIST, status=400, body=body)


def _not_a_page(sim: DevRevSimulator) -> None:
    sim.add_fault("status", path=LIST, status=200, body={"sessions": "none today"})


def _truncated(sim: DevRevSimulator) -> None:
    sim.add_fault("truncated_json", path=LIST)


def _down(sim: DevRevSimulator) -> None:
    sim.add_fault("server_error", path=LIST, status=503, times=None)


@pytest.mark.parametrize(
    ("break_it", "error_class", "status", "page_requests"),
    [
        (_revoke, DevRevAuthError, 401, 1),
        (_bad_request, DevRevBadRequestError, 400, 1),
        (_not_a_page, DevRevUnexpectedResponseError, 200, 1),
        (_truncated, DevRevUnexpectedResponseError, 200, 1),
        (_down, DevRevServerError, 503, 3),  # max_retries=2: three attempts, then the error
    ],
    ids=["401-revoked", "400", "200-not-a-page", "200-truncated", "503-retries-spent"],
)
def test_final_error_mid_pagination_raises_typed(sim, sleep, break_it, error_class, status, page_requests):
    sessions = add_at(sim, [T0 + timedelta(seconds=i) for i in range(25)])
    hook = DevRevHook(sleep=sleep, max_retries=2)
    iterator = hook.iter_sessions("android", VK)
    first_page = [next(iterator) for _ in range(10)]
    break_it(sim)

    with pytest.raises(error_class) as caught:
        next(iterator)

    assert first_page == in_sim_order(sim, sessions)[:10]
    assert caught.value.status_code == status
    made = list_requests(sim)
    assert len(made) == 1 + page_requests
    assert len({cursor_of(r) for r in made[1:]}) == 1
    assert len(sleep.waits) == page_requests - 1
    with pytest.raises(StopIteration):
        next(iterator)  # a generator that raised is finished


BAD_CALLS = [
    ({"platform": "windows"}, "platform"),
    ({"version_key": ""}, "version_key"),
    ({"filters": {"is_crahs": True}}, "filters['is_crahs']"),
    ({"filters": {"is_crash": "true"}}, "filters['is_crash']"),
    ({"filters": {"created_at": {"type": "range"}}}, "filters['created_at']"),
    ({"created_after": datetime(2025, 3, 1)}, "created_after"),
    ({"created_after": T0 + MS, "created_before": T0}, "created_before"),
    ({"page_size": 0}, "page_size"),
    ({"page_size": 101}, "page_size"),
    ({"page_size": True}, "page_size"),
    ({"type": "web"}, "type"),
]


@pytest.mark.parametrize(("overrides", "field"), BAD_CALLS, ids=[field for _, field in BAD_CALLS])
def test_bad_arguments_raise_before_any_request(sim, hook, overrides, field):
    add_at(sim, [T0])
    kwargs: dict[str, Any] = {"platform": "android", "version_key": VK, **overrides}

    with pytest.raises(DevRevInvalidInputError) as caught:
        hook.iter_sessions(kwargs.pop("platform"), kwargs.pop("version_key"), **kwargs)  # raises here: no next()

    assert caught.value.field_name == field
    assert sim.requests == []


# -- async -------------------------------------------------------------------------------------------


async def collect(iterator: Any, on_item: Callable[[int], None] | None = None) -> list[dict[str, Any]]:
    got = []
    async for session in iterator:
        got.append(session)
        if on_item is not None:
            on_item(len(got))
    return got


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"page_size": 3},
        {"filters": {"is_crash": False}, "created_after": EDGES[0], "created_before": EDGES[2], "page_size": 4},
    ],
    ids=["get", "get-page-size", "post-filters-dates"],
)
def test_aiter_sessions_yields_what_iter_sessions_yields(sim, sleep, kwargs):
    add_at(sim, boundary_moments(), overrides=lambda i: {"is_crash": i % 3 == 0})

    expected = list(DevRevHook(sleep=sleep).iter_sessions("android", VK, **kwargs))
    sync_requests = list_requests(sim)
    sim.clear_requests()
    query = session_query("android", VK, **kwargs)
    got = asyncio.run(collect(DevRevHook(async_sleep=sleep.async_sleep).aiter_sessions(query)))

    assert got == expected
    assert len(got) >= 5
    async_requests = list_requests(sim)
    assert [(r.method, r.query, r.body) for r in async_requests] == [(r.method, r.query, r.body) for r in sync_requests]
    if "created_before" in kwargs:
        assert iso(kwargs["created_before"]) not in [s["created_at"] for s in got]


def test_aiter_sessions_retries_a_rate_limited_page_with_the_same_cursor(sim, sleep):
    sessions = add_at(sim, [T0 + timedelta(seconds=i) for i in range(25)])
    hook = DevRevHook(async_sleep=sleep.async_sleep)

    def after_item(count: int) -> None:
        if count == 11:  # two pages fetched
            sim.add_fault("rate_limit", path=LIST, retry_after=3)

    got = asyncio.run(collect(hook.aiter_sessions(session_query("android", VK)), after_item))

    assert got == in_sim_order(sim, sessions)
    made = list_requests(sim)
    assert [r.status for r in made] == [200, 200, 429, 200]
    assert cursor_of(made[2]) == cursor_of(made[3]) is not None
    assert sleep.waits == [3.0]


def test_a_server_that_always_promises_more_ends_the_listing_with_an_error(sim, hook, monkeypatch):
    """A server bug that would otherwise page forever, with flat memory and no error."""
    from airflow_provider_devrev import listing

    real = listing.parse_page

    first_cursor: list[str] = []

    def looping(request, payload):
        page = real(request, payload)
        first_cursor.append(first_cursor[0] if first_cursor else page.next_cursor)
        return listing.SessionPage(page.sessions, first_cursor[0])  # the first page's cursor, every time

    monkeypatch.setattr("airflow_provider_devrev.hooks.devrev.parse_page", looping)
    for number in range(25):  # more than one page of 10
        sim.add_session(sim.make_session("mobile", session_id=f"s{number}"), version_key=VK)

    with pytest.raises(DevRevUnexpectedResponseError, match=r"already given|does not get past them"):
        list(hook.iter_sessions("android", VK))
    # Three ranges of 10 (each repeating the last session of the one before), then the last instant alone
    # and the page its cursor leads to, which brings nothing new.
    assert len(sim.requests_for(path=LIST)) <= 6
