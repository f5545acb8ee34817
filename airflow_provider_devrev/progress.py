"""One progress line at most every 30 s for long work (an export's pages, a bulk fetch), not one per page."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from airflow_provider_devrev import metrics

#: Seconds between two progress lines of one piece of work.
PROGRESS_EVERY = 30.0


class Progress:
    """
    Counts pages and sessions and logs, at most every :data:`PROGRESS_EVERY` seconds, how far the work is:
    pages, sessions so far, their rate, and the 429 pauses waited out meanwhile (from :mod:`.metrics`).

    :param log: Where the line goes (the hook's or the task's logger).
    :param what: What is being done, e.g. ``"Exporting android sessions"``.
    :param clock: Monotonic seconds; the class's :attr:`clock` when left out (tests replace either).
    """

    clock: Callable[[], float] = staticmethod(time.monotonic)

    def __init__(self, log: Any, what: str, *, clock: Callable[[], float] | None = None) -> None:
        self._log, self._what = log, what
        self._clock = clock or type(self).clock
        self.started = self._last = self._clock()
        self.pages = self.sessions = 0
        self._rate_limited_at_start = metrics.rate_limited_count()

    def add(self, *, pages: int = 0, sessions: int = 0) -> None:
        """Count work done; log a line if the last one is at least :data:`PROGRESS_EVERY` seconds old."""
        self.pages += pages
        self.sessions += sessions
        now = self._clock()
        if now - self._last >= PROGRESS_EVERY:
            self._last = now
            self._log.info("%s: %s", self._what, self.summary(now))

    def summary(self, now: float | None = None) -> str:
        elapsed = max((self._clock() if now is None else now) - self.started, 1e-9)
        pauses = metrics.rate_limited_count() - self._rate_limited_at_start
        return (
            f"{self.pages} pages, {self.sessions} sessions so far in {elapsed:.0f} s "
            f"({self.sessions / elapsed:.1f} sessions/s), {pauses} rate-limit (429) pauses"
        )
