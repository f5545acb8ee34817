"""Listings stay exact whatever the cursor: every simulator cursor mode and order, sessions coming and going."""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import strategies as st

from airflow_provider_devrev.exceptions import DevRevUnexpectedResponseError
from airflow_provider_devrev.hooks.devrev import DevRevHook
from airflow_provider_devrev.listing import session_query
from airflow_provider_devrev.testing import DevRevSimulator
from tests.fakes import FakeSleep
from tests.properties import sized

T0 = datetime(2025, 3, 1, tzinfo=UTC)
DAY_END = T0 + timedelta(days=1)
STYLES = [(mode, order) for mode in ("keyset", "keyset_no_tiebreak", "offset") for order in ("asc", "desc")]
_keys = itertools.count()


@dataclass
class Changes:
    """What to do before given list requests of the current listing (numbered from 1 for each listing)."""

    base: int = 0
    seen: int = 0
    at: dict[int, list[Callable[[], Any]]] = field(default_factory=dict)

    def __call__(self, number: int) -> None:
        self.seen = number
        for action in self.at.pop(number - self.base, []):
            action()

    def start(self, at: dict[int, list[Callable[[], Any]]]) -> None:
        self.base, self.at = self.seen, at


@pytest.fixture(params=STYLES, ids=["-".join(style) for style in STYLES])
def unkind(request, monkeypatch) -> Iterator[tuple[DevRevSimulator, Changes]]:
    mode, order = request.param
    changes = Changes()
    with DevRevSimulator(seed_data=False, cursor_mode=mode, order=order, page_size=10) as sim:
        sim.on_page(changes)
        monkeypatch.setenv("AIRFLOW_CONN_DEVREV_DEFAULT", sim.connection_json())
        yield sim, changes


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def add(sim: DevRevSimulator, session_id: str, moment: datetime, version_key: str) -> None:
    sim.add_session(sim.make_session("mobile", session_id=session_id, created_at=iso(moment)), version_key=version_key)


def listed(version_key: str, page_size: int | None = None, *, use_async: bool = False, **bounds: Any) -> list[str]:
    if use_async:
        query = session_query("android", version_key, page_size=page_size, **bounds)

        async def collect() -> list[str]:
            hook = DevRevHook(async_sleep=FakeSleep().async_sleep)
            return [session["session_id"] async for session in hook.aiter_sessions(query)]

        return asyncio.run(collect())
    hook = DevRevHook(sleep=FakeSleep())
    return [s["session_id"] for s in hook.iter_sessions("android", version_key, page_size=page_size, **bounds)]


# -- the examples ----------------------------------------------------------------------------


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
def test_a_late_upload_mid_listing_repeats_no_session(unkind, use_async):
    """Offset cursor, page size 10, 30 sessions: a late upload put ``ex-009`` in the file twice."""
    sim, changes = unkind
    vk = f"late{next(_keys)}@1"
    for n in range(30):
        add(sim, f"ex-{n:03d}", T0 + timedelta(minutes=n), vk)
    changes.start({2: [lambda: add(sim, "late", T0 + timedelta(seconds=30), vk)]})

    got = listed(vk, created_after=T0, created_before=DAY_END, use_async=use_async)

    counts = Counter(got)
    assert [name for name, count in counts.items() if count > 1] == []
    assert {f"ex-{n:03d}" for n in range(30)} <= set(got)
    assert set(got) - {f"ex-{n:03d}" for n in range(30)} <= {"late"}


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
def test_a_session_deleted_mid_listing_hides_no_other(unkind, use_async):
    """Offset cursor: a session deleted mid-listing made ``ex-010``, present all along, vanish."""
    sim, changes = unkind
    vk = f"gone{next(_keys)}@1"
    for n in range(30):
        add(sim, f"ex-{n:03d}", T0 + timedelta(minutes=n), vk)
    doomed = "ex-003" if sim.order == "asc" else "ex-026"
    changes.start({2: [lambda: sim.remove_session(doomed)]})

    got = listed(vk, use_async=use_async)

    assert len(got) == len(set(got))
    assert set(got) - {doomed} == {f"ex-{n:03d}" for n in range(30)} - {doomed}


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
def test_sessions_sharing_an_instant_across_a_page_boundary_are_all_listed(unkind, use_async):
    """A keyset cursor on created_at alone listed 27 of 30: ``ex-010`` to ``ex-012`` shared ``ex-009``'s instant."""
    sim, _ = unkind
    vk = f"tie{next(_keys)}@1"
    for n in range(30):
        moment = T0 + timedelta(minutes=7 if 7 <= n <= 12 else n)
        add(sim, f"ex-{n:03d}", moment, vk)
    if sim.order == "desc":  # the same boundary seen from the other end: pages of 10 from ex-029 down
        for n in range(17, 23):
            add(sim, f"ex-{n:03d}", T0 + timedelta(minutes=20), vk)

    got = listed(vk, created_after=T0, created_before=DAY_END, use_async=use_async)

    assert sorted(got) == [f"ex-{n:03d}" for n in range(30)]


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
def test_more_sessions_at_one_instant_than_a_page_are_listed_or_the_listing_fails_naming_it(unkind, use_async):
    sim, _ = unkind
    vk = f"crowd{next(_keys)}@1"
    crowd = T0 + timedelta(hours=3)
    for n in range(12):
        add(sim, f"crowd-{n:02d}", crowd, vk)
    for n in range(8):
        add(sim, f"other-{n}", T0 + timedelta(hours=n % 6, minutes=n), vk)

    if sim.cursor_mode == "keyset_no_tiebreak":
        # The cursor can get past a page of them only by skipping the rest: fail, saying where and how many.
        with pytest.raises(
            DevRevUnexpectedResponseError, match=r"5 or more sessions share created_at 2025-03-01T03:00:00"
        ):
            listed(vk, page_size=5, use_async=use_async)
        return
    got = listed(vk, page_size=5, use_async=use_async)
    assert sorted(got) == sorted([f"crowd-{n:02d}" for n in range(12)] + [f"other-{n}" for n in range(8)])


def test_a_server_that_ignores_sort_by_is_listed_exactly(monkeypatch):
    changes = Changes()
    with DevRevSimulator(seed_data=False, cursor_mode="offset", order="desc", ignore_sort_by=True, page_size=7) as sim:
        sim.on_page(changes)
        monkeypatch.setenv("AIRFLOW_CONN_DEVREV_DEFAULT", sim.connection_json())
        for n in range(40):
            add(sim, f"s{n:02d}", T0 + timedelta(seconds=n // 2), "ig@1")
        changes.start({2: [lambda: add(sim, "new", T0, "ig@1")], 3: [lambda: sim.remove_session("s39")]})
        got = listed("ig@1")
    assert len(got) == len(set(got))
    assert set(got) - {"new", "s39"} == {f"s{n:02d}" for n in range(39)}


# -- every mode and order, sessions coming and going -------------------------------------------------------


@st.composite
def scenarios(draw: st.DrawFn) -> dict[str, Any]:
    page_size = draw(st.integers(min_value=2, max_value=8))
    # Few instants, so ties across page boundaries are common; never more at one instant than a page holds
    # (that case fails with keyset_no_tiebreak by design, and is tested above).
    slots = st.integers(min_value=0, max_value=40)
    initial = draw(st.lists(slots, min_size=0, max_size=45))
    inserts = draw(st.lists(st.tuples(st.integers(1, 12), slots), max_size=10))
    deletes = draw(st.lists(st.tuples(st.integers(1, 12), st.integers(0, 200)), max_size=8))
    per_instant = Counter(initial) + Counter(slot for _, slot in inserts)
    if per_instant and max(per_instant.values()) >= page_size:
        page_size = min(100, max(per_instant.values()) + 1)
    return {
        "page_size": page_size,
        "initial": initial,
        "inserts": inserts,
        "deletes": deletes,
        "bounded": draw(st.booleans()),
        "use_async": draw(st.booleans()),
    }


@pytest.mark.property
@sized(150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(scenario=scenarios())
def test_every_session_present_throughout_is_listed_once_and_no_other_twice(unkind, scenario):
    sim, changes = unkind
    vk = f"prop{next(_keys)}@1"
    initial = [f"i{n:03d}" for n in range(len(scenario["initial"]))]
    for session_id, slot in zip(initial, scenario["initial"], strict=True):
        add(sim, session_id, T0 + timedelta(seconds=slot), vk)
    at: dict[int, list[Callable[[], Any]]] = {}
    inserted: list[str] = []
    for n, (page, slot) in enumerate(scenario["inserts"]):
        inserted.append(f"n{n:03d}")
        at.setdefault(page, []).append(
            lambda sid=inserted[-1], slot=slot: add(sim, sid, T0 + timedelta(seconds=slot), vk)
        )
    deleted: set[str] = set()
    for page, pick in scenario["deletes"]:
        if initial:
            victim = initial[pick % len(initial)]
            deleted.add(victim)
            at.setdefault(page, []).append(
                lambda victim=victim: sim.remove_session(victim) if victim in present() else None
            )

    def present() -> set[str]:
        return {s["session_id"] for s in sim.sessions}

    changes.start(at)
    bounds = {"created_after": T0, "created_before": T0 + timedelta(seconds=41)} if scenario["bounded"] else {}
    got = listed(vk, scenario["page_size"], use_async=scenario["use_async"], **bounds)

    counts = Counter(got)
    throughout = set(initial) - deleted
    assert {sid for sid in throughout if counts[sid] != 1} == set(), "present all along: exactly once"
    assert {sid for sid, count in counts.items() if count > 1} == set(), "come or gone: at most once"
    assert set(got) <= set(initial) | set(inserted)


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
def test_a_crowded_instant_at_the_interval_end_is_left_to_the_next_interval(unkind, use_async):
    """Before: 12 sessions at exactly ``created_before`` (the next day's) failed this day's export (no tie-break)."""
    sim, _ = unkind
    vk = f"edge{next(_keys)}@1"
    for n in range(12):
        add(sim, f"next-{n:02d}", DAY_END, vk)
    for n in range(8):
        add(sim, f"day-{n}", T0 + timedelta(hours=n), vk)

    got = listed(vk, page_size=5, created_after=T0, created_before=DAY_END, use_async=use_async)

    assert sorted(got) == [f"day-{n}" for n in range(8)]


def test_an_empty_interval_lists_nothing_and_asks_nothing(unkind):
    sim, changes = unkind
    vk = f"empty{next(_keys)}@1"
    add(sim, "at", T0, vk)
    before = changes.seen

    assert listed(vk, created_after=T0, created_before=T0) == []
    assert changes.seen == before
