"""Filters of ``POST /observability.sessions.list`` (``mobile-sessions-filter``, ``web-sessions-filter``).

Semantics chosen where the contract is silent:

- boolean filters match the session's value exactly (``is_crash: false`` keeps only non-crash sessions);
  the derived web flags are ``has_console_errors`` (``console_metadata.error > 0``), ``has_rage_clicks``
  (``rage_click_count > 0``), ``has_dead_clicks`` (``dead_click_count > 0``) and ``has_network_errors``
  (any ``network_metadata.status_counts`` entry with status >= 400 and a count > 0); ``is_anonymous``
  means "no ``rev_user_id``".
- list filters keep sessions whose value is one of the listed strings (exact, case-sensitive); an empty
  list matches nothing.
- ``created_at`` ``range``: both ``after`` and ``before`` are INCLUSIVE, as the contract's
  ``date-time-filter`` descriptions say. ``preset`` ``last_n_days``/``next_n_days`` are relative to the
  real (wall-clock) current time, because session timestamps are wall-clock times.
- ``session_duration``: ``min_ms`` and ``max_ms`` are inclusive.
- filters the contract declares but the simulator does not evaluate (custom events, attributes, network
  and console log contents, screen names...) are answered 400 ``bad_request`` naming the filter, rather
  than being ignored silently; fields the contract does not declare are ignored (the API grows).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow_provider_devrev.testing.data import parse_datetime
from airflow_provider_devrev.testing.protocol import Params, bad_request

# (session, its created_at as epoch seconds, parsed once when it was stored) -> whether it matches
Predicate = Callable[[dict[str, Any], float], bool]
Extract = Callable[[dict[str, Any]], Any]

_UNSUPPORTED: dict[str, tuple[str, ...]] = {
    "mobile": ("custom_events", "response_time_list", "screen_name", "session_attributes"),
    "web": (
        "console_logs",
        "custom_events",
        "events",
        "network_logs",
        "normalized_url",
        "page_name",
        "session_attributes",
    ),
}


def _meta(session: dict[str, Any], field: str) -> Any:
    metadata = session.get("device_metadata")
    return metadata.get(field) if isinstance(metadata, dict) else None


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _network_errors(session: dict[str, Any]) -> bool:
    metadata = session.get("network_metadata")
    counts = metadata.get("status_counts") if isinstance(metadata, dict) else None
    if not isinstance(counts, dict):
        return False
    return any(status.isdigit() and int(status) >= 400 and _count(n) > 0 for status, n in counts.items())


def _console_errors(session: dict[str, Any]) -> bool:
    metadata = session.get("console_metadata")
    return isinstance(metadata, dict) and _count(metadata.get("error")) > 0


_BOOLEANS: dict[str, dict[str, Extract]] = {
    "mobile": {
        "is_crash": lambda s: s.get("is_crash"),
        "is_anr": lambda s: s.get("is_anr"),
        "rage_tap": lambda s: s.get("rage_tap"),
        "has_exception_occurred": lambda s: s.get("has_exception_occurred"),
        "is_anonymous": lambda s: "rev_user_id" not in s,
    },
    "web": {
        "has_console_errors": _console_errors,
        "has_rage_clicks": lambda s: _count(s.get("rage_click_count")) > 0,
        "has_dead_clicks": lambda s: _count(s.get("dead_click_count")) > 0,
        "has_network_errors": _network_errors,
        "is_anonymous": lambda s: "rev_user_id" not in s,
    },
}

_LISTS: dict[str, dict[str, Extract]] = {
    "mobile": {
        "app_version": lambda s: _meta(s, "app_version"),
        "os_version": lambda s: _meta(s, "os_version"),
        "device_model": lambda s: _meta(s, "model"),
        "manufacturer": lambda s: _meta(s, "manufacturer"),
        "network_type": lambda s: _meta(s, "network_type"),
        "rev_org": lambda s: s.get("rev_org_id"),
        "rev_user": lambda s: s.get("rev_user_id"),
    },
    "web": {
        "browser": lambda s: _meta(s, "browser"),
        "browser_version": lambda s: _meta(s, "browser_version"),
        "os": lambda s: _meta(s, "os"),
        "network_type": lambda s: _meta(s, "network_type"),
        "device_type": lambda s: _meta(s, "type"),
        "page_url": lambda s: s.get("first_page_url"),
        "rev_org": lambda s: s.get("rev_org_id"),
        "rev_user": lambda s: s.get("rev_user_id"),
    },
}


def _timestamp(params: Params, name: str) -> float | None:
    text = params.string(name)
    if text is None:
        return None
    try:
        return parse_datetime(text).timestamp()
    except ValueError:
        raise bad_request(
            "invalid_field",
            f"{params.prefix}{name} is not an ISO-8601 date-time",
            field_name=params.prefix + name,
        ) from None


def created_range(params: Params) -> tuple[float | None, float | None]:
    """A ``created_at`` filter as an inclusive ``(after, before)`` pair of epoch seconds (validated again
    by :func:`build_filter`); the store uses ``after`` to skip older sessions without testing each one."""
    return _date_range(params)


def _date_range(params: Params) -> tuple[float | None, float | None]:
    """``date-filter`` as an inclusive ``(after, before)`` pair of epoch seconds."""
    kind = params.enum("type", ("preset", "range"), required=True)
    if kind == "range":
        return _timestamp(params, "after"), _timestamp(params, "before")
    preset = params.enum("preset_type", ("last_n_days", "next_n_days"), required=True)
    days = params.integer("days", minimum=0)
    if days is None:
        raise bad_request("missing_required_field", "date preset needs 'days'", field_name=params.prefix + "days")
    now = datetime.now(UTC)
    span = timedelta(days=days)
    if preset == "last_n_days":
        return (now - span).timestamp(), now.timestamp()
    return now.timestamp(), (now + span).timestamp()


def build_filter(params: Params, kind: str) -> Predicate:
    """Validate the filters of a list request body and return the predicate they describe.

    :param params: the request body.
    :param kind: ``mobile`` or ``web`` (the body's ``type``), which selects the filter set.
    :raises ApiError: for an ill-typed or unsupported filter.
    """
    for name in _UNSUPPORTED[kind]:
        if params.has(name):
            raise bad_request("bad_request", f"the DevRev simulator does not evaluate the {name!r} filter")
    flags: list[tuple[Extract, bool]] = []
    for name, extract in _BOOLEANS[kind].items():
        wanted = params.boolean(name)
        if wanted is not None:
            flags.append((extract, wanted))
    memberships: list[tuple[Extract, frozenset[str]]] = []
    for name, extract in _LISTS[kind].items():
        values = params.string_list(name)
        if values is not None:
            memberships.append((extract, frozenset(values)))
    created = params.obj("created_at")
    after, before = _date_range(created) if created is not None else (None, None)
    duration = params.obj("session_duration")
    low = duration.integer("min_ms", minimum=0) if duration is not None else None
    high = duration.integer("max_ms", minimum=0) if duration is not None else None

    def matches(session: dict[str, Any], created_ts: float) -> bool:
        if any(bool(extract(session)) != wanted for extract, wanted in flags):
            return False
        if any(extract(session) not in allowed for extract, allowed in memberships):
            return False
        if (after is not None and created_ts < after) or (before is not None and created_ts > before):
            return False
        duration_ms = _count(session.get("session_duration_ms"))
        return (low is None or duration_ms >= low) and (high is None or duration_ms <= high)

    return matches
