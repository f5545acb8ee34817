"""
An exact listing of ``observability.sessions.list``: every session that exists for the whole listing once,
a session added or removed during it at most once, whatever DevRev's cursor is. No I/O: the hook's two
transports send the requests this asks for and hand back the pages.

The contract leaves the cursor opaque and ``sort_by``'s values unsaid, so nothing here rests on either. A
keyset cursor without a tie-break skips sessions that share a page's last ``created_at``; an offset cursor
repeats or hides a session when one is added or removed before it. So pages are not followed by cursor at
all: each request is the FIRST page of a ``created_at`` range the client chooses (the POST body's
``created_at`` filter, both ends inclusive), and the range shrinks past what a page covered:

- a page in ascending ``created_at`` order covers everything before its last ``created_at``, ``m``: the next
  range starts at ``m`` (inclusive), and the ids of the page's sessions at ``m`` are remembered so they are not
  written twice; a descending page, symmetrically, moves the range's end;
- a range whose page has no ``next_cursor`` is complete;
- a full page whose sessions all share one instant ``t`` cannot move the range: the instant is listed by itself
  (range ``[t, t]``), following the cursor there, and the ranges either side of it are listed after. If the
  cursor cannot get past the sessions at ``t`` (a page it leads to brings nothing new), the listing fails,
  naming ``t`` and how many sessions share it, rather than skip any.

The order is read from each page (ascending, descending, either is fine, even if DevRev ignores a ``sort_by``);
a page not ordered by ``created_at`` at all fails the listing. Memory: one page, plus the ids at a range's
two ends, plus the ids at one instant; not the interval's size. Requests: about one per page, plus one for each
range whose page ended on an instant shared past its end.

An instant here is a microsecond, Python's precision, but the contract's ``created_at`` is an RFC 3339 date-time
whose fraction may be finer: sessions a nanosecond apart are one instant to the hook and two to DevRev. So
every ``before`` sent reaches the end of its microsecond (``.123456999Z``): a range ending at an instant holds
all of it as DevRev counts it, and what lies past the hook's own bound is dropped here, as before.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from airflow_provider_devrev.contract import ApiRequest
from airflow_provider_devrev.exceptions import DevRevUnexpectedResponseError
from airflow_provider_devrev.listing import CursorTrail, SessionPage, SessionQuery, created_at_of

#: DevRev's timestamps have at most microsecond precision (we send them with it): the next instant.
_TICK = timedelta(microseconds=1)


def _through_microsecond(request: ApiRequest) -> ApiRequest:
    """``request`` with its ``created_at`` ``before`` (inclusive) at the last nanosecond of its microsecond."""
    bounds = request.body.get("created_at") if request.body else None
    if isinstance(bounds, dict) and isinstance(bounds.get("before"), str):
        # format_timestamp always ends ".ffffffZ"; the body is the request's own, built for this page.
        bounds["before"] = bounds["before"].removesuffix("Z") + "999Z"
    return request


@dataclass
class _Range:
    """``[low, high]`` (inclusive, ``None`` unbounded) and the ids already written at each end."""

    low: datetime | None
    high: datetime | None
    low_ids: set[str] = field(default_factory=set)
    high_ids: set[str] = field(default_factory=set)

    def holds(self, moment: datetime) -> bool:
        return (self.low is None or moment >= self.low) and (self.high is None or moment <= self.high)

    def written(self, moment: datetime) -> set[str]:
        """The ids already written at ``moment``: only the ends of a range can hold any."""
        ids: set[str] = set()
        if moment == self.low:
            ids |= self.low_ids
        if moment == self.high:
            ids |= self.high_ids
        return ids


@dataclass
class _Instant:
    """One instant listed by itself, following the cursor, with every id written at it."""

    moment: datetime
    ids: set[str]
    cursors: CursorTrail = field(default_factory=CursorTrail)
    followed: bool = False


class ExactListing:
    """
    The requests of one exact listing and what each page adds to it.

    :param query: the listing, as ``session_query`` validated it.
    """

    def __init__(self, query: SessionQuery) -> None:
        self.query = query
        # The query's created_before is exclusive and DevRev's before inclusive: the range ends an instant
        # earlier, so sessions at created_before (the next interval's) are never asked for. A crowd of them
        # there would otherwise fill pages of this listing and, with a cursor that cannot get past it, fail an
        # interval that holds none of them.
        high = None if query.created_before is None else query.created_before - _TICK
        # A stack: the range on top is listed first. Ranges are split only around an instant, so it stays short.
        self._ranges: list[_Range] = []
        if query.created_after is None or high is None or query.created_after <= high:
            self._ranges.append(_Range(query.created_after, high))
        self._instant: _Instant | None = None
        # Sessions whose created_at cannot be read cannot be placed in a range; deduplicated by id instead.
        self._unplaced: set[str] = set()

    def next_request(self) -> ApiRequest | None:
        """The next request to send, or ``None`` when the listing is complete."""
        if self._instant is not None:
            moment = self._instant.moment
            return _through_microsecond(
                replace(self.query, created_after=moment, created_before=moment).page_request(
                    self._instant.cursors.current
                )
            )
        if not self._ranges:
            return None
        top = self._ranges[-1]
        return _through_microsecond(replace(self.query, created_after=top.low, created_before=top.high).page_request())

    def receive(self, request: ApiRequest, page: SessionPage) -> list[dict[str, Any]]:
        """
        Take the answer to :meth:`next_request` and return the sessions it adds, each for the first time.

        :raises DevRevUnexpectedResponseError: the page is not in ``created_at`` order, ignores the range asked
            for, or more sessions share one instant than the cursor can get past.
        """
        if self._instant is not None:
            return self._receive_instant(request, page)
        return self._receive_range(request, page)

    def _new(self, session: Mapping[str, Any], known: set[str], seen: set[str]) -> bool:
        session_id = str(session.get("session_id"))
        if session_id in known or session_id in seen:
            return False
        seen.add(session_id)
        return True

    def _receive_range(self, request: ApiRequest, page: SessionPage) -> list[dict[str, Any]]:
        current = self._ranges[-1]
        placed: list[tuple[datetime, dict[str, Any]]] = []
        added: list[dict[str, Any]] = []
        seen: set[str] = set()
        for session in page.sessions:
            moment = created_at_of(session)
            if moment is None:
                if self._new(session, self._unplaced, self._unplaced):
                    added.append(session)
            elif current.holds(moment):
                placed.append((moment, session))
                if self._new(session, current.written(moment), seen) and self.query.in_interval(session):
                    added.append(session)
        if page.next_cursor is None:
            self._ranges.pop()
            return added
        if not placed:
            raise DevRevUnexpectedResponseError(
                f"{request.describe()} answered a page with more to come but no session in the created_at range "
                "asked for; stopping rather than listing the same sessions again",
                status_code=200,
            )
        times = [moment for moment, _ in placed]
        ascending = all(a <= b for a, b in itertools.pairwise(times))
        descending = all(a >= b for a, b in itertools.pairwise(times))
        if not (ascending or descending):
            raise DevRevUnexpectedResponseError(
                f"{request.describe()} answered a page not in created_at order; an exact listing needs one",
                status_code=200,
            )
        edge = times[-1]
        at_edge = {str(session.get("session_id")) for moment, session in placed if moment == edge}
        at_edge |= current.written(edge)
        if times[0] < edge:
            self._ranges[-1] = _Range(edge, current.high, at_edge, current.high_ids if edge == current.high else set())
        elif times[0] > edge:
            self._ranges[-1] = _Range(current.low, edge, current.low_ids if edge == current.low else set(), at_edge)
        else:
            self._split(current, edge, at_edge)
        return added

    def _split(self, current: _Range, moment: datetime, ids: set[str]) -> None:
        """A full page all at ``moment``: list the instant alone, then the ranges either side of it."""
        self._ranges.pop()
        if current.high is None or moment < current.high:
            self._ranges.append(_Range(moment + _TICK, current.high, set(), current.high_ids))
        if current.low is None or moment > current.low:
            self._ranges.append(_Range(current.low, moment - _TICK, current.low_ids, set()))
        self._instant = _Instant(moment, ids)

    def _receive_instant(self, request: ApiRequest, page: SessionPage) -> list[dict[str, Any]]:
        instant = self._instant
        assert instant is not None
        added = [
            session
            for session in page.sessions
            if created_at_of(session) == instant.moment and self._new(session, instant.ids, instant.ids)
        ]
        if instant.followed and not added:
            # The page before promised more (it had a next_cursor), and the cursor led to nothing new: a cursor
            # that forgets the tie-break. Skipping the rest would lose sessions without a trace.
            raise DevRevUnexpectedResponseError(
                f"{len(instant.ids)} or more sessions share created_at {instant.moment.isoformat()}, more than one "
                f"page holds, and the cursor of {request.describe()} does not get past them; stopping rather than "
                "skipping any (ask for a larger page_size)",
                status_code=200,
            )
        if instant.cursors.advance(request, page.next_cursor):
            instant.followed = True
        else:
            self._instant = None
        return [session for session in added if self.query.in_interval(session)]
