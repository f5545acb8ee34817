"""The simulator's cursor modes and orders: ``keyset`` is stable under inserts and deletes, the others are not, on
purpose (DevRev's cursor is not documented; a client is tested against each)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from airflow_provider_devrev.testing import DevRevSimulator
from airflow_provider_devrev.testing.__main__ import main

LIST = "/observability.sessions.list"
VK = "modes@1"


def listing(sim: DevRevSimulator, limit: int, between: dict[int, Any] | None = None, **extra: Any) -> list[str]:
    """Follow the cursor to the end, running ``between[n]`` before page ``n`` (from 2)."""
    got: list[str] = []
    cursor = None
    page = 1
    while True:
        body = {"type": "mobile", "platform": "android", "version_key": VK, "limit": limit, **extra}
        if cursor:
            body["cursor"] = cursor
        answer = requests.post(sim.url + LIST, json=body, headers={"Authorization": f"Bearer {sim.token}"}, timeout=10)
        assert answer.status_code == 200, answer.text
        got += [s["session_id"] for s in answer.json()["sessions"]]
        cursor = answer.json().get("next_cursor")
        if cursor is None:
            return got
        page += 1
        if between and page in between:
            between[page]()


def add(sim: DevRevSimulator, session_id: str, created_at: str) -> None:
    sim.add_session(sim.make_session("mobile", session_id=session_id, created_at=created_at), version_key=VK)


def minute(n: int) -> str:
    return f"2025-03-01T00:{n:02d}:00.000Z"


@pytest.fixture(params=["keyset", "keyset_no_tiebreak", "offset"])
def sim(request) -> Iterator[DevRevSimulator]:
    with DevRevSimulator(seed_data=False, cursor_mode=request.param) as simulator:
        for n in range(30):
            add(simulator, f"ex-{n:03d}", minute(n))
        yield simulator


def test_an_insert_before_the_cursor_repeats_a_session_only_with_an_offset_cursor(sim):
    got = listing(sim, 10, {2: lambda: add(sim, "late", "2025-03-01T00:00:30.000Z")})
    repeated = sorted({s for s in got if got.count(s) > 1})
    assert repeated == (["ex-009"] if sim.cursor_mode == "offset" else [])
    assert "late" not in got  # it sorts before the cursor: no mode lists it


def test_a_delete_before_the_cursor_hides_another_only_with_an_offset_cursor(sim):
    got = listing(sim, 10, {2: lambda: sim.remove_session("ex-003")})
    missing = sorted({f"ex-{n:03d}" for n in range(30)} - set(got) - {"ex-003"})
    assert missing == (["ex-010"] if sim.cursor_mode == "offset" else [])


def test_ties_across_a_page_boundary_are_skipped_only_without_a_tiebreak(sim):
    for n in range(10, 13):  # ex-010..ex-012 share ex-009's instant: the first page ends among them
        add(sim, f"ex-{n:03d}", minute(9))
    got = listing(sim, 10)
    assert len(got) == (27 if sim.cursor_mode == "keyset_no_tiebreak" else 30)


@pytest.mark.parametrize("ignore", [False, True])
def test_order_sets_the_default_and_ignore_sort_by_disregards_sort_by(ignore):
    with DevRevSimulator(seed_data=False, order="desc", ignore_sort_by=ignore) as sim:
        for n in range(5):
            add(sim, f"s{n}", minute(n))
        assert sim.order == "desc"
        assert listing(sim, 2) == ["s4", "s3", "s2", "s1", "s0"]
        assert listing(sim, 2, sort_by=["created_at:asc"]) == (["s4", "s3", "s2", "s1", "s0"] if ignore else
                                                                ["s0", "s1", "s2", "s3", "s4"])  # fmt: skip
        if ignore:  # not even checked
            assert listing(sim, 2, sort_by=["nonsense"]) == ["s4", "s3", "s2", "s1", "s0"]


def test_unknown_modes_and_orders_are_refused():
    with pytest.raises(ValueError, match="cursor_mode"):
        DevRevSimulator(cursor_mode="page")
    with pytest.raises(ValueError, match="order"):
        DevRevSimulator(order="newest")


def test_on_page_numbers_list_requests_from_one():
    numbers: list[int] = []
    with DevRevSimulator(seed_data=False) as sim:
        for n in range(5):
            add(sim, f"s{n}", minute(n))
        sim.on_page(numbers.append)
        listing(sim, 2)
        requests.get(sim.url + "/dev-users.self", headers={"Authorization": f"Bearer {sim.token}"}, timeout=10)
        listing(sim, 5)
    assert numbers == [1, 2, 3, 4]


@pytest.mark.devrev_simulator(cursor_mode="offset", order="desc", seed_data=False)
def test_the_fixture_marker_takes_the_mode_and_order(devrev_simulator):
    assert (devrev_simulator.cursor_mode, devrev_simulator.order) == ("offset", "desc")


def test_the_cli_takes_cursor_and_order(monkeypatch, capsys):
    seen: list[tuple[str, str]] = []

    def refuse(self: DevRevSimulator) -> DevRevSimulator:
        seen.append((self.cursor_mode, self.order))
        raise OSError("not listening in this test")

    monkeypatch.setattr(DevRevSimulator, "start", refuse)
    assert main(["--empty", "--cursor", "keyset_no_tiebreak", "--order", "desc"]) == 2
    assert seen == [("keyset_no_tiebreak", "desc")]
    with pytest.raises(SystemExit):
        main(["--cursor", "page"])
    assert "invalid choice" in capsys.readouterr().err
