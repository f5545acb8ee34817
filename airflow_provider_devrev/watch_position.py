"""
Where a :class:`~airflow_provider_devrev.triggers.devrev.DevRevNewSessionsTrigger` is in DevRev's session
list, as a small value that stays the same size whatever the traffic.

A session is new to the watch when it is listed for the first time. DevRev offers no upload time to page by,
only ``created_at``, and sessions appear out of ``created_at`` order (the SDKs upload them after they end,
crashes often at the app's next launch). So the position is:

- ``floor``: the oldest ``created_at`` the next poll lists (DevRev's ``created_at`` filter, inclusive);
- ``recent``: the ids already reported whose ``created_at`` is at or after ``floor``, each with its
  ``created_at``; any other listed session is new;
- ``high_water``: the newest ``created_at`` seen.

After each poll ``floor`` rises to ``high_water - overlap`` and the ids below it are dropped. ``recent`` never
holds more than :data:`MAX_RECENT_IDS` ids: when more sessions than that lie within the overlap, ``floor``
rises further, to the ``created_at`` of the oldest id kept. That bound keeps the saved value under a few KB
and each poll's listing to ``MAX_RECENT_IDS`` plus the new sessions. Its price: a session uploaded later
than ``MAX_RECENT_IDS`` newer sessions (or than ``overlap``) is below ``floor`` when it appears, and is not
reported. Times are whole microseconds since the epoch: DevRev's timestamps have that precision, and integers
compare exactly at the floor, where a float could let a session through twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

#: The most reported ids a position keeps (about 60 bytes each when saved).
MAX_RECENT_IDS = 64
#: Seconds a ``created_at`` may lie ahead of the poll's clock and still count as the high-water mark: a device
#: whose clock runs a year fast must not lift the floor past every honest session.
MAX_CLOCK_SKEW = 300.0
#: The version of :meth:`WatchPosition.to_json`'s value; version 1 was the full set of ids in the lookback.
STATE_VERSION = 2

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO = timedelta(microseconds=1)


def to_micros(moment: datetime) -> int:
    """An aware datetime as whole microseconds since the epoch."""
    return (moment - _EPOCH) // _MICRO


def seconds_to_micros(seconds: float) -> int:
    return round(seconds * 1_000_000)


def from_micros(micros: int) -> datetime:
    return _EPOCH + timedelta(microseconds=micros)


@dataclass
class WatchPosition:
    """
    The position of one watch (see the module's docstring).

    :param floor: The oldest ``created_at`` (µs) the next poll lists.
    :param recent: ``{session_id: created_at µs}`` of the reported sessions at or after ``floor``.
    :param high_water: The newest ``created_at`` (µs) seen, ``None`` before any session.
    """

    floor: int
    recent: dict[str, int] = field(default_factory=dict)
    high_water: int | None = None

    @classmethod
    def start(cls, now: float, lookback: float) -> WatchPosition:
        """A new watch's position: it lists the whole lookback once (the baseline), then only from the floor."""
        return cls(floor=seconds_to_micros(now - lookback))

    def __len__(self) -> int:
        return len(self.recent)

    def listing_start(self, now: float, lookback: float) -> datetime:
        """Where a poll at ``now`` lists from: ``floor``, but never before ``now - lookback``."""
        return from_micros(max(self.floor, seconds_to_micros(now - lookback)))

    def is_new(self, session_id: str, created: int) -> bool:
        """Whether a listed session has not been reported (one below ``floor`` may have been, and was dropped)."""
        return created >= self.floor and session_id not in self.recent

    def record(self, sessions: Iterable[tuple[str, int]], *, overlap: float, now: float | None = None) -> int:
        """
        Count ``(session_id, created_at µs)`` as reported, then move ``floor`` up to ``high_water - overlap``
        and to the bound of :data:`MAX_RECENT_IDS`.

        With ``now`` (the poll's clock), a ``created_at`` more than :data:`MAX_CLOCK_SKEW` ahead of it counts
        as ``now + MAX_CLOCK_SKEW`` for the high-water mark, and the floor never passes the high-water mark:
        future-dated sessions (a device's wrong clock) are kept as reported ids, beyond the bound if need be,
        rather than hiding every honest session below the floor.

        :return: How many ids the bound (not the overlap) dropped: reported sessions whose late-arriving
            neighbours can no longer be told apart, so the watch no longer looks that far back.
        """
        ceiling = None if now is None else seconds_to_micros(now + MAX_CLOCK_SKEW)
        # A new dict, never the old one changed in place: a value of :meth:`to_json` taken earlier, and still
        # waiting to be saved, must not come to count this poll's sessions (issue 27).
        recent = dict(self.recent)
        for session_id, created in sessions:
            recent[session_id] = created
            mark = created if ceiling is None else min(created, ceiling)
            self.high_water = mark if self.high_water is None else max(self.high_water, mark)
        if self.high_water is not None:
            self.floor = max(self.floor, self.high_water - seconds_to_micros(overlap))
        self.recent = {key: created for key, created in recent.items() if created >= self.floor}
        # Future-dated ids (above the high-water mark) are kept outside the bound: counting them would lift
        # the floor over every honest session.
        honest = sorted(
            (created for created in self.recent.values() if self.high_water is None or created <= self.high_water),
            reverse=True,
        )
        if len(honest) <= MAX_RECENT_IDS:
            return 0
        boundary = honest[MAX_RECENT_IDS - 1]
        # Ids sharing the boundary's created_at are kept or dropped together: the floor is inclusive, so one
        # kept would need all of them, and one dropped but still listed would be reported again.
        floor = boundary if honest[MAX_RECENT_IDS] < boundary else boundary + 1
        before = len(self.recent)
        self.floor = max(self.floor, floor)
        self.recent = {key: created for key, created in self.recent.items() if created >= self.floor}
        return before - len(self.recent)

    def to_json(self) -> dict[str, Any]:
        """The JSON value saved in the asset's state store (a few KB at most): a snapshot, which the position's
        later changes leave as it is (it may wait a while before it is saved)."""
        return {
            "version": STATE_VERSION,
            "floor": self.floor,
            "high_water": self.high_water,
            "recent": dict(self.recent),
        }

    @classmethod
    def from_json(cls, value: Any, *, now: float, lookback: float) -> WatchPosition | None:
        """
        Rebuild a saved position; ``None`` for anything this class did not write.

        A version 1 value (every id of the lookback, with when it could be forgotten) becomes a position whose
        floor is ``now - lookback`` (the lookback it was saved with), holding those ids: the first poll lists
        the old window once, reports what appeared meanwhile, and the next record shrinks it.
        """
        if not isinstance(value, Mapping):
            return None
        if value.get("version") == 1:
            return cls._from_version_1(value, now=now, lookback=lookback)
        if value.get("version") != STATE_VERSION:
            return None
        floor, high_water, recent = value.get("floor"), value.get("high_water"), value.get("recent")
        if (
            not isinstance(floor, int)
            or not _is_int(floor)
            or not (high_water is None or _is_int(high_water))
            or not isinstance(recent, Mapping)
        ):
            return None
        if not all(isinstance(key, str) and _is_int(created) for key, created in recent.items()):
            return None
        return cls(floor=floor, recent=dict(recent), high_water=high_water)

    @classmethod
    def _from_version_1(cls, value: Mapping[str, Any], *, now: float, lookback: float) -> WatchPosition | None:
        expiries = value.get("expiries")
        if not isinstance(expiries, Mapping) or not all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in expiries.values()
        ):
            return None
        saved = value.get("lookback")
        window = (
            float(saved) if isinstance(saved, int | float) and not isinstance(saved, bool) and saved > 0 else lookback
        )
        # An expiry was max(created_at, then - lookback) + lookback, then <= now: at or after the session's
        # created_at (and not after now, for an honest one), so an id is kept as long as it could be listed.
        recent = {str(key): seconds_to_micros(min(float(expiry) - window, now)) for key, expiry in expiries.items()}
        return cls(floor=seconds_to_micros(now - window), recent=recent)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
