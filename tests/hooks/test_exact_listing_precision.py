"""
Exact listings when DevRev's ``created_at`` is finer than Python's microseconds.

The contract types ``created_at`` as an RFC 3339 date-time, whose fraction may have any number of digits; Python
keeps six. Sessions a nanosecond apart are then one instant to the hook and two to DevRev, and a range the hook
ends at that instant must still reach the ones DevRev places after it. The simulator stores times as floats
(coarser than a microsecond), so this drives the listing with a small server of its own that keeps the text.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from airflow_provider_devrev.exact_listing import ExactListing
from airflow_provider_devrev.listing import SessionPage, session_query

T0 = datetime(2025, 3, 1, tzinfo=UTC)


def nanos(text: str) -> tuple[datetime, int]:
    """A date-time as (whole seconds, nanoseconds): exact to the nanosecond, as a server that keeps them."""
    whole, _, fraction = text.removesuffix("Z").partition(".")
    return datetime.fromisoformat(whole + "+00:00"), int((fraction + "0" * 9)[:9])


class NanosecondServer:
    """A keyset listing with a tie-break on ``session_id``, ordered by ``created_at`` to the nanosecond."""

    def __init__(self, sessions: dict[str, str], page_size: int, order: str) -> None:
        self.sessions, self.page_size, self.descending = sessions, page_size, order == "desc"

    def key(self, session_id: str) -> tuple[Any, ...]:
        return (*nanos(self.sessions[session_id]), session_id)

    def answer(self, body: dict[str, Any]) -> SessionPage:
        bounds = body.get("created_at", {})
        low = nanos(bounds["after"]) if "after" in bounds else None
        high = nanos(bounds["before"]) if "before" in bounds else None
        ids = sorted(
            (
                i
                for i, text in self.sessions.items()
                if (low is None or nanos(text) >= low) and (high is None or nanos(text) <= high)
            ),
            key=self.key,
            reverse=self.descending,
        )
        if "cursor" in body:
            seconds, nanoseconds, session_id = json.loads(body["cursor"])
            mark = (datetime.fromisoformat(seconds), nanoseconds, session_id)
            ids = [i for i in ids if (self.key(i) < mark if self.descending else self.key(i) > mark)]
        page = ids[: self.page_size]
        if len(ids) <= self.page_size:
            return SessionPage([{"session_id": i, "created_at": self.sessions[i]} for i in page], None)
        cursor = json.dumps([str(part) if isinstance(part, datetime) else part for part in self.key(page[-1])])
        return SessionPage([{"session_id": i, "created_at": self.sessions[i]} for i in page], cursor)


def list_all(server: NanosecondServer) -> list[str]:
    listing = ExactListing(session_query("ios", "v@1", created_after=T0, created_before=T0 + timedelta(days=1)))
    got: list[str] = []
    while (request := listing.next_request()) is not None:
        assert request.body is not None
        got += [session["session_id"] for session in listing.receive(request, server.answer(dict(request.body)))]
    return got


def text(moment: datetime, nanoseconds: int = 0) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + f"{nanoseconds:03d}Z"


@pytest.mark.parametrize("order", ["asc", "desc"])
def test_sessions_a_nanosecond_apart_in_one_microsecond_are_all_listed(order):
    """Before: 4 of the 7 sessions sharing one microsecond were in no page (asc and desc alike), silently."""
    shared = T0 + timedelta(hours=1, microseconds=123456)
    sessions = {f"n{n}": text(shared, 100 * (n + 1)) for n in range(7)}
    sessions |= {f"o{n}": text(T0 + timedelta(minutes=n)) for n in range(5)}
    sessions |= {f"p{n}": text(T0 + timedelta(hours=2, minutes=n)) for n in range(4)}

    got = list_all(NanosecondServer(sessions, page_size=3, order=order))

    assert [session_id for session_id, count in Counter(got).items() if count > 1] == []
    assert sorted(got) == sorted(sessions)


def test_a_session_a_nanosecond_past_the_interval_end_is_left_to_the_next_interval():
    end = T0 + timedelta(days=1)
    sessions = {"in": text(end - timedelta(microseconds=1), 999), "edge": text(end), "past": text(end, 1)}

    got = list_all(NanosecondServer(sessions, page_size=1, order="desc"))

    assert got == ["in"]
