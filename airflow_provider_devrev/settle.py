"""
When an export may list its interval: ``settle`` after the interval's end, so that late uploads are in.

DevRev's SDKs upload a session in the background after it ends, and a crash session usually only when the
app is next launched: a session created at 23:50 may become visible at 00:30 or later. An export that lists
``[start, end)`` right at ``end`` misses it for good, since no later interval covers its ``created_at``.
Pure decisions only; the operator obeys them (defers, or reschedules, until :func:`listable_at`).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from airflow_provider_devrev.exceptions import DevRevInvalidInputError

#: The default ``settle`` of :class:`~airflow_provider_devrev.operators.devrev.ListSessionsOperator`.
#: DevRev documents no bound on upload delay: its docs say only that the SDKs upload sessions in the
#: background after they end, and minutes to hours are normal. Two hours covers the common case (a crash
#: reported when the app is reopened the same evening) at the cost of a daily file written at 02:00.
DEFAULT_SETTLE = timedelta(hours=2)
#: The longest ``settle`` accepted: a wait beyond this is almost certainly a unit mistake (seconds as days).
MAX_SETTLE = timedelta(days=31)


def validate_settle(value: Any) -> timedelta:
    """``value`` as a ``timedelta`` from zero to :data:`MAX_SETTLE`; a number is refused (which unit?)."""
    if not isinstance(value, timedelta):
        raise DevRevInvalidInputError("settle", value, "must be a datetime.timedelta, e.g. timedelta(hours=2)")
    if value < timedelta(0) or value > MAX_SETTLE:
        raise DevRevInvalidInputError("settle", value, f"must be from 0 to {MAX_SETTLE}")
    return value


def listable_at(created_before: datetime | None, settle: timedelta) -> datetime | None:
    """The first moment an interval ending at ``created_before`` may be listed; ``None`` when open-ended."""
    return None if created_before is None else created_before + settle


def wait_until(created_before: datetime | None, settle: timedelta, now: datetime) -> datetime | None:
    """The moment to wait for before listing, or ``None`` when the listing may run ``now``."""
    ready = listable_at(None if created_before is None else _plain_utc(created_before), settle)
    return ready if ready is not None and _plain_utc(now) < ready else None


def _plain_utc(moment: datetime) -> datetime:
    # Pendulum's DateTime (what Airflow puts in the context) refuses some comparisons with the standard
    # library's; both become plain aware UTC datetimes, exact to the microsecond.
    utc = moment.astimezone(UTC)
    return datetime(utc.year, utc.month, utc.day, utc.hour, utc.minute, utc.second, utc.microsecond, tzinfo=UTC)
