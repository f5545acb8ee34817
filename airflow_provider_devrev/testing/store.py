"""In-memory session store of the DevRev simulator: visibility rules and keyset paging.

Not thread-safe on its own: :class:`~airflow_provider_devrev.testing.simulator.DevRevSimulator` calls it
under its lock.

A cursor encodes a position (a sort key, or an offset: see :mod:`~airflow_provider_devrev.testing.paging`),
never server-side state, so memory stays flat however many cursors clients obtain or abandon.
"""

from __future__ import annotations

import bisect
import copy
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_provider_devrev.testing.data import MOBILE_PLATFORMS, parse_datetime
from airflow_provider_devrev.testing.paging import SortKey, SortSpec, Token, select

if TYPE_CHECKING:
    from collections.abc import Callable

SORT_FIELDS = ("created_at", "session_duration_ms")
DEFAULT_SORT: SortSpec = (("created_at", False),)


@dataclass
class Entry:
    """One stored session and the rules deciding when clients can see it."""

    version_key: str
    platform: str
    session: dict[str, Any]
    created_ts: float
    added_at: float
    appear_after_requests: int | None
    appear_after_seconds: float | None
    lookups: int = 0
    appear_at: float | None = None

    @property
    def session_id(self) -> str:
        return str(self.session["session_id"])

    def visible(self, now: float) -> bool:
        """Whether the session has "appeared" (been uploaded) at clock value ``now``.

        :param now: the simulator clock's current value.
        """
        if self.appear_after_requests is not None and self.lookups < self.appear_after_requests:
            return False
        if self.appear_at is not None and now < self.appear_at:
            return False
        return self.appear_after_seconds is None or now - self.added_at >= self.appear_after_seconds

    def sort_key(self, sort: SortSpec) -> SortKey:
        values: list[Any] = []
        for field, descending in sort:
            if field == "created_at":
                value = self.created_ts
            else:
                duration = self.session.get("session_duration_ms")
                value = float(duration) if isinstance(duration, int | float) else 0.0
            values.append(-value if descending else value)
        values.append(self.session_id)
        return tuple(values)


def session_platform(session: dict[str, Any]) -> str:
    """The platform a session is stored under, checking the fields the store relies on.

    :param session: a session object.
    :raises ValueError: when the session lacks what the simulator needs to serve it.
    """
    kind = session.get("type")
    if kind not in ("mobile", "web"):
        raise ValueError(f"session 'type' must be 'mobile' or 'web', not {kind!r}")
    session_id = session.get("session_id")
    if not isinstance(session_id, str) or not session_id:
        raise ValueError("session needs a non-empty string 'session_id'")
    created_at = session.get("created_at")
    if not isinstance(created_at, str):
        raise ValueError("session needs an ISO-8601 'created_at' string (lists are ordered by it)")
    parse_datetime(created_at)
    platform = session.get("platform", "web" if kind == "web" else None)
    allowed = MOBILE_PLATFORMS if kind == "mobile" else ("web",)
    if platform not in allowed:
        raise ValueError(f"a {kind} session needs 'platform' in {list(allowed)}, got {platform!r}")
    return str(platform)


class SessionStore:
    """Sessions keyed by ``(version_key, session_id)``, indexed by ``(version_key, platform)`` for lists."""

    def __init__(self) -> None:
        self._by_key: dict[tuple[str, str], Entry] = {}
        self._by_scope: dict[tuple[str, str], dict[str, Entry]] = {}
        # Per scope, its entries in created_at order, rebuilt on the first list after a change: a list with a
        # created_at lower bound then skips the older sessions instead of testing each (flat cost per page
        # for a client that lists only recent sessions of a large store).
        self._by_created: dict[tuple[str, str], tuple[list[float], list[Entry]]] = {}

    def add(
        self,
        session: dict[str, Any],
        *,
        version_key: str,
        now: float,
        appear_after_requests: int | None = None,
        appear_after_seconds: float | None = None,
        appear_at: float | None = None,
    ) -> dict[str, Any]:
        """Store a deep copy of ``session``, replacing any session with the same version key and id.

        :param session: the session object.
        :param version_key: the app version key it belongs to.
        :param now: clock value at which ``appear_after_seconds`` starts counting.
        :param appear_after_requests: lookups needed before it is found (the K-th finds it).
        :param appear_after_seconds: clock seconds before it is visible.
        :param appear_at: the clock value from which it is visible (its upload time).
        :returns: a copy of what was stored.
        """
        platform = session_platform(session)
        if not isinstance(version_key, str) or not version_key:
            raise ValueError("version_key must be a non-empty string")
        if appear_after_requests is not None and appear_after_requests < 1:
            raise ValueError("appear_after_requests must be >= 1")
        if appear_after_seconds is not None and appear_after_seconds < 0:
            raise ValueError("appear_after_seconds must be >= 0")
        stored = copy.deepcopy(session)
        entry = Entry(
            version_key=version_key,
            platform=platform,
            session=stored,
            created_ts=parse_datetime(stored["created_at"]).timestamp(),
            added_at=now,
            appear_after_requests=appear_after_requests,
            appear_after_seconds=appear_after_seconds,
            appear_at=appear_at,
        )
        self._discard(version_key, entry.session_id)
        self._by_key[(version_key, entry.session_id)] = entry
        self._by_scope.setdefault((version_key, platform), {})[entry.session_id] = entry
        self._by_created.pop((version_key, platform), None)
        return copy.deepcopy(stored)

    def _discard(self, version_key: str, session_id: str) -> bool:
        old = self._by_key.pop((version_key, session_id), None)
        if old is None:
            return False
        del self._by_scope[(version_key, old.platform)][session_id]
        self._by_created.pop((version_key, old.platform), None)
        return True

    def remove(self, session_id: str, version_key: str | None = None) -> int:
        """Remove a session from every version key (or only ``version_key``); returns how many went."""
        keys = [key for key in self._by_key if key[1] == session_id and version_key in (None, key[0])]
        for key in keys:
            self._discard(*key)
        return len(keys)

    def lookup(self, *, platform: str, session_id: str, version_key: str, now: float) -> dict[str, Any] | None:
        """Find a session as ``sessions.get`` does, counting the lookup towards ``appear_after_requests``.

        :returns: a copy of the session, or None when it does not exist (yet) for these parameters.
        """
        entry = self._by_key.get((version_key, session_id))
        if entry is None or entry.platform != platform:
            return None
        entry.lookups += 1
        return copy.deepcopy(entry.session) if entry.visible(now) else None

    def find(self, *, session_id: str, version_key: str, now: float) -> dict[str, Any] | None:
        """A visible session by id and version key, whatever its platform, without counting a lookup (what
        ``sessions.data.get`` and ``developer-info.get`` see; only ``sessions.get`` makes a session appear).

        :returns: the stored session itself (not a copy: callers only read it), or None.
        """
        entry = self._by_key.get((version_key, session_id))
        return entry.session if entry is not None and entry.visible(now) else None

    def visible(self, now: float) -> list[dict[str, Any]]:
        """Copies of every visible session, in list order (created_at, then session_id)."""
        entries = [entry for entry in self._by_key.values() if entry.visible(now)]
        entries.sort(key=lambda entry: (entry.created_ts, entry.session_id, entry.version_key))
        return [copy.deepcopy(entry.session) for entry in entries]

    def page(
        self,
        *,
        version_key: str,
        platform: str,
        matches: Callable[[dict[str, Any], float], bool],
        sort: SortSpec,
        cursor: Token | None,
        mode: str,
        limit: int,
        now: float,
        created_from: float | None = None,
        cursor_mode: str = "keyset",
    ) -> tuple[list[dict[str, Any]], Token | None, Token | None]:
        """One page of a list request.

        :param mode: ``after`` (entries after ``cursor``, or from the start) or ``before`` (entries before
            ``cursor``, or from the end); either way the page is in ``sort`` order.
        :param created_from: the request's inclusive ``created_at`` lower bound, if any (``matches`` applies
            it too; this only skips the entries below it).
        :param cursor_mode: how ``cursor`` and the tokens returned remember a position (see
            :mod:`~airflow_provider_devrev.testing.paging`).
        :returns: ``(sessions, next_token, prev_token)``; a token is None when nothing lies beyond that side.
        """
        candidates = [
            (entry.sort_key(sort), entry)
            for entry in self._scope_from((version_key, platform), created_from)
            if entry.visible(now) and matches(entry.session, entry.created_ts)
        ]
        chosen, next_token, prev_token = select(
            candidates, cursor=cursor, mode=mode, limit=limit, cursor_mode=cursor_mode
        )
        return [copy.deepcopy(entry.session) for entry in chosen], next_token, prev_token

    def _scope_from(self, scope: tuple[str, str], created_from: float | None) -> list[Entry]:
        entries = self._by_scope.get(scope, {})
        if created_from is None:
            return list(entries.values())
        index = self._by_created.get(scope)
        if index is None:
            ordered = sorted(entries.values(), key=lambda entry: entry.created_ts)
            index = self._by_created[scope] = ([entry.created_ts for entry in ordered], ordered)
        times, ordered = index
        return ordered[bisect.bisect_left(times, created_from) :]
