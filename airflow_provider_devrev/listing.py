"""
DevRev's ``observability.sessions.list``, as pure functions: request building, page parsing and the
``[created_after, created_before)`` interval rule. No I/O; the hook's two transports send what this builds.

Two facts of the contract shape everything here:

- Filters exist only in the POST form, whose body needs ``type`` (``mobile`` or ``web``); the type follows
  from the platform, so callers never have to say it.
- DevRev's ``created_at`` range has both ends INCLUSIVE. Airflow's data intervals are half-open
  (``[data_interval_start, data_interval_end)``), so a session created exactly at the end must belong to the
  next interval only. We send ``before`` inclusive, as the API wants, and drop the sessions created exactly
  at ``created_before`` here, so that consecutive intervals never overlap and never leave a gap.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from airflow_provider_devrev.contract import ApiRequest, validate_platform, validate_text
from airflow_provider_devrev.exceptions import DevRevInvalidInputError, DevRevUnexpectedResponseError

SESSIONS_LIST_PATH = "/observability.sessions.list"
SESSION_TYPES: tuple[str, ...] = ("mobile", "web")
#: The contract leaves the page size's default and maximum unsaid; 100 is a common API maximum, and a
#: larger page only makes each retry dearer.
MAX_PAGE_SIZE = 100

#: Filter fields of ``mobile-sessions-filter`` / ``web-sessions-filter`` in openapi.yaml, with the JSON
#: type each takes. ``created_at`` is not here: it is set from ``created_after``/``created_before``.
_BOOL, _STRINGS, _OBJECT, _OBJECTS = "boolean", "list of strings", "object", "list of objects"
FILTER_FIELDS: dict[str, dict[str, str]] = {
    "mobile": {
        "is_crash": _BOOL,
        "is_anr": _BOOL,
        "rage_tap": _BOOL,
        "has_exception_occurred": _BOOL,
        "is_anonymous": _BOOL,
        "app_version": _STRINGS,
        "os_version": _STRINGS,
        "device_model": _STRINGS,
        "manufacturer": _STRINGS,
        "network_type": _STRINGS,
        "rev_org": _STRINGS,
        "rev_user": _STRINGS,
        "screen_name": _STRINGS,
        "session_duration": _OBJECT,
        "custom_events": _OBJECT,
        "response_time_list": _OBJECT,
        "session_attributes": _OBJECTS,
    },
    "web": {
        "has_console_errors": _BOOL,
        "has_dead_clicks": _BOOL,
        "has_network_errors": _BOOL,
        "has_rage_clicks": _BOOL,
        "is_anonymous": _BOOL,
        "browser": _STRINGS,
        "browser_version": _STRINGS,
        "device_type": _STRINGS,
        "network_type": _STRINGS,
        "os": _STRINGS,
        "page_name": _STRINGS,
        "page_url": _STRINGS,
        "normalized_url": _STRINGS,
        "rev_org": _STRINGS,
        "rev_user": _STRINGS,
        "session_duration": _OBJECT,
        "console_logs": _OBJECT,
        "custom_events": _OBJECT,
        "events": _OBJECT,
        "network_logs": _OBJECT,
        "session_attributes": _OBJECTS,
    },
}


def session_type_for(platform: str, requested: Any = None) -> str:
    """The list body's ``type`` for ``platform`` (``web`` for web, else ``mobile``), checking an explicit one."""
    expected = "web" if platform == "web" else "mobile"
    if requested is not None and requested != expected:
        raise DevRevInvalidInputError(
            "type", requested, f"must be {expected!r} for platform {platform!r} (or left out: it follows from it)"
        )
    return expected


def validate_filters(filters: Any, session_type: str) -> dict[str, Any]:
    """
    Check ``filters`` against the contract's filter set for ``session_type`` before anything is sent.

    A misspelt filter would otherwise be ignored by the server and silently export every session.
    """
    if filters is None:
        return {}
    if not isinstance(filters, Mapping):
        raise DevRevInvalidInputError("filters", filters, "must be a dict of DevRev session filters")
    known = FILTER_FIELDS[session_type]
    checked: dict[str, Any] = {}
    for name, value in filters.items():
        label = f"filters[{name!r}]"
        if name == "created_at":
            raise DevRevInvalidInputError(label, value, "set the date range with created_after/created_before")
        kind = known.get(name)
        if kind is None:
            raise DevRevInvalidInputError(
                label, value, f"is not a {session_type} session filter; known: {', '.join(sorted(known))}"
            )
        if not _has_kind(value, kind):
            raise DevRevInvalidInputError(label, value, f"must be a {kind}")
        checked[name] = value
    return checked


def _has_kind(value: Any, kind: str) -> bool:
    if kind == _BOOL:
        return isinstance(value, bool)
    if kind == _STRINGS:
        return isinstance(value, list | tuple) and all(isinstance(item, str) for item in value)
    if kind == _OBJECT:
        return isinstance(value, Mapping)
    return isinstance(value, list | tuple) and all(isinstance(item, Mapping) for item in value)


def to_utc(value: Any, field_name: str) -> datetime | None:
    """
    A bound as an aware UTC datetime: a ``datetime`` (pendulum's included) or ISO-8601 text with an offset.

    Naive times are refused: whether they mean UTC or the DAG's timezone is exactly the ambiguity that
    makes an export skip or repeat hours.
    """
    if value is None:
        return None
    given = value  # what errors show: the caller's text, not what it parsed to
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise DevRevInvalidInputError(field_name, value, "must be an ISO-8601 date-time") from None
    if not isinstance(value, datetime):
        raise DevRevInvalidInputError(field_name, value, "must be a datetime or ISO-8601 text")
    if value.tzinfo is None or value.utcoffset() is None:
        raise DevRevInvalidInputError(field_name, given, "must carry a timezone (naive times are ambiguous)")
    utc = value.astimezone(UTC)
    # A plain datetime, not pendulum's (Airflow's data intervals): pendulum drops a stdlib tzinfo on arithmetic,
    # so its `end - timedelta(...)` came back naive and could not be compared with the start.
    return datetime(*utc.timetuple()[:6], utc.microsecond, tzinfo=UTC)


def format_timestamp(moment: datetime) -> str:
    """RFC 3339 in UTC with microseconds, so no precision is lost at an interval's edge."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class SessionQuery:
    """
    One validated listing: which sessions, in which date interval, how many per page.

    :param platform: ``android``, ``ios`` or ``web``.
    :param version_key: The app version key.
    :param session_type: ``mobile`` or ``web``; follows from ``platform``.
    :param filters: Contract filters (``is_crash``, ``app_version``, ...), checked.
    :param created_after: Inclusive lower bound on ``created_at``, UTC.
    :param created_before: EXCLUSIVE upper bound on ``created_at``, UTC.
    :param page_size: Sessions per page; ``None`` lets DevRev choose.
    """

    platform: str
    version_key: str
    session_type: str
    filters: Mapping[str, Any]
    created_after: datetime | None
    created_before: datetime | None
    page_size: int | None

    @property
    def uses_post(self) -> bool:
        """Filters and dates exist only in the POST form; a plain listing uses GET, as DevRev documents first."""
        return bool(self.filters) or self.created_after is not None or self.created_before is not None

    def page_request(self, cursor: str | None = None) -> ApiRequest:
        """The request for the page at ``cursor`` (the first page when ``None``)."""
        if not self.uses_post:
            query = [("platform", self.platform), ("version_key", self.version_key)]
            if cursor is not None:
                query.append(("cursor", cursor))
            if self.page_size is not None:
                query.append(("limit", str(self.page_size)))
            return ApiRequest("GET", SESSIONS_LIST_PATH, query=tuple(query))
        body: dict[str, Any] = {"type": self.session_type, "platform": self.platform, "version_key": self.version_key}
        body.update(self.filters)
        if self.created_after is not None or self.created_before is not None:
            created_at: dict[str, Any] = {"type": "range"}
            if self.created_after is not None:
                created_at["after"] = format_timestamp(self.created_after)
            if self.created_before is not None:
                created_at["before"] = format_timestamp(self.created_before)
            body["created_at"] = created_at
        if cursor is not None:
            body["cursor"] = cursor
        if self.page_size is not None:
            body["limit"] = self.page_size
        return ApiRequest("POST", SESSIONS_LIST_PATH, body=body)

    def in_interval(self, session: Mapping[str, Any]) -> bool:
        """
        Whether ``session`` lies in ``[created_after, created_before)``: DevRev's ``before`` is inclusive, so a
        session created exactly at ``created_before`` comes back and belongs to the next interval instead.
        A session whose ``created_at`` we cannot read is kept (the server already filtered it).
        """
        if self.created_before is None and self.created_after is None:
            return True
        created = created_at_of(session)
        if created is None:
            return True
        if self.created_before is not None and created >= self.created_before:
            return False
        return self.created_after is None or created >= self.created_after


def session_query(
    platform: Any,
    version_key: Any,
    *,
    type: Any = None,
    filters: Any = None,
    created_after: Any = None,
    created_before: Any = None,
    page_size: Any = None,
) -> SessionQuery:
    """Validate the arguments of a listing (naming the field and value at fault) and describe it."""
    platform = validate_platform(platform)
    version_key = validate_text(version_key, "version_key")
    session_type = session_type_for(platform, type)
    after = to_utc(created_after, "created_after")
    before = to_utc(created_before, "created_before")
    if after is not None and before is not None and before < after:
        raise DevRevInvalidInputError("created_before", created_before, f"must not be before created_after={after}")
    if page_size is not None and (
        isinstance(page_size, bool) or not isinstance(page_size, int) or not 1 <= page_size <= MAX_PAGE_SIZE
    ):
        raise DevRevInvalidInputError("page_size", page_size, f"must be an int from 1 to {MAX_PAGE_SIZE}")
    return SessionQuery(
        platform=platform,
        version_key=version_key,
        session_type=session_type,
        filters=validate_filters(filters, session_type),
        created_after=after,
        created_before=before,
        page_size=page_size,
    )


@dataclass(frozen=True)
class SessionPage:
    """One page of a listing: its sessions, and the cursor of the next page (``None`` on the last one)."""

    sessions: list[dict[str, Any]]
    next_cursor: str | None


def parse_page(request: ApiRequest, payload: Mapping[str, Any]) -> SessionPage:
    """Check a 200 list body (``sessions`` a list of objects, ``next_cursor`` a string when present)."""
    sessions = payload.get("sessions")
    next_cursor = payload.get("next_cursor")
    if not isinstance(sessions, list) or not all(isinstance(item, dict) for item in sessions):
        raise DevRevUnexpectedResponseError(
            f"{request.describe()} answered 200 without a 'sessions' list of objects", status_code=200
        )
    if next_cursor is not None and not isinstance(next_cursor, str):
        raise DevRevUnexpectedResponseError(
            f"{request.describe()} answered 200 with a 'next_cursor' that is not a string", status_code=200
        )
    return SessionPage(sessions, next_cursor or None)


class CursorTrail:
    """
    The cursors of one listing, so that a server handing back a cursor it already gave (a bug, but one that
    would page forever with flat memory and no error) ends the listing with an error instead.
    """

    def __init__(self) -> None:
        self.current: str | None = None
        self._seen: set[str] = set()

    def advance(self, request: ApiRequest, next_cursor: str | None) -> bool:
        """Move to ``next_cursor``; ``False`` at the last page.

        :raises DevRevUnexpectedResponseError: the cursor was handed out before in this listing.
        """
        if next_cursor is None:
            return False
        if next_cursor in self._seen or next_cursor == self.current:
            raise DevRevUnexpectedResponseError(
                f"{request.describe()} answered a next_cursor it had already given in this listing; stopping "
                "rather than paging forever",
                status_code=200,
            )
        self._seen.add(next_cursor)
        self.current = next_cursor
        return True


def created_at_of(session: Mapping[str, Any]) -> datetime | None:
    """A session's ``created_at`` as an aware datetime, or ``None`` when missing or unreadable."""
    text = session.get("created_at")
    if not isinstance(text, str):
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


class SeenSessions:
    """
    The ids of sessions already reported, each with when it stops mattering.

    New sessions are told apart by id, not by ``created_at``: the SDKs upload a session after it ends, often
    much later, so a new one usually has an older ``created_at`` than sessions already seen. An id can be
    forgotten once its session is older than the listing's lookback, because no later listing returns it.

    :param expiries: ``{session_id: unix time after which it may be forgotten}``.
    """

    def __init__(self, expiries: Mapping[str, float] | None = None) -> None:
        self._expiries: dict[str, float] = dict(expiries or {})

    def __len__(self) -> int:
        return len(self._expiries)

    def __contains__(self, session_id: object) -> bool:
        return session_id in self._expiries

    def add(self, session: Mapping[str, Any], *, lookback: float, now: float) -> None:
        """Remember ``session`` until ``lookback`` seconds after its ``created_at`` (or after ``now``)."""
        created = created_at_of(session)
        start = created.timestamp() if created is not None else now
        self._expiries[str(session.get("session_id"))] = max(start, now - lookback) + lookback

    def forget_expired(self, now: float) -> None:
        """Drop the ids no listing can return any more."""
        self._expiries = {key: expiry for key, expiry in self._expiries.items() if expiry > now}

    def to_json(self) -> dict[str, Any]:
        """A JSON value to persist (ids and expiries, rounded up to the second)."""
        # Rounded up: forgetting an id even a moment before no listing can return it would make it fire again.
        return {"version": 1, "expiries": {key: math.ceil(expiry) for key, expiry in self._expiries.items()}}

    @classmethod
    def from_json(cls, value: Any) -> SeenSessions | None:
        """Rebuild from :meth:`to_json`'s output; ``None`` for anything else (unknown or damaged state)."""
        if (
            not isinstance(value, Mapping)
            or value.get("version") != 1
            or not isinstance(value.get("expiries"), Mapping)
        ):
            return None
        expiries = value["expiries"]
        if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in expiries.values()):
            return None
        return cls({str(key): float(expiry) for key, expiry in expiries.items()})
