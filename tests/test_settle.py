"""settle: when an export may list its interval."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pendulum
import pytest

from airflow_provider_devrev.exceptions import DevRevInvalidInputError
from airflow_provider_devrev.settle import DEFAULT_SETTLE, listable_at, validate_settle, wait_until

END = datetime(2026, 2, 2, tzinfo=UTC)


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (END, END + DEFAULT_SETTLE),
        (END + DEFAULT_SETTLE - timedelta(microseconds=1), END + DEFAULT_SETTLE),
        (END + DEFAULT_SETTLE, None),
        (END + timedelta(days=30), None),
    ],
)
def test_wait_until_the_end_plus_settle(now, expected):
    assert wait_until(END, DEFAULT_SETTLE, now) == expected


def test_pendulum_times_from_airflows_context_compare_with_the_standard_librarys():
    end = pendulum.datetime(2026, 2, 2, tz="Europe/Paris")
    ready = wait_until(end, timedelta(hours=1), datetime(2026, 2, 1, 23, 30, tzinfo=UTC))
    assert ready == datetime(2026, 2, 2, tzinfo=UTC)  # 00:00 Paris + 1 h


def test_no_upper_bound_never_waits():
    assert listable_at(None, DEFAULT_SETTLE) is None
    assert wait_until(None, DEFAULT_SETTLE, END) is None


@pytest.mark.parametrize("bad", [7200, 2.0, None, "2h", timedelta(seconds=-1), timedelta(days=32)])
def test_settle_must_be_a_sensible_timedelta(bad):
    with pytest.raises(DevRevInvalidInputError, match="settle"):
        validate_settle(bad)
