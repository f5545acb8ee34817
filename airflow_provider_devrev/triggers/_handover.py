"""
How a :class:`~airflow_provider_devrev.triggers.devrev.DevRevNewSessionsTrigger` hands its new sessions to
Airflow, and when a position counting them may be saved.

A poll's new sessions wait in a queue that the trigger drains between polls; the position that counts them
as reported is kept aside, as it was at that poll, and saved only once every one of them has been handed over
and :data:`SAVE_DELAY` has passed. So the saved position never counts a session that has not fired: a restart
can repeat an event, but not lose one.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from airflow_provider_devrev.watch_position import WatchPosition

#: Seconds a :class:`~airflow_provider_devrev.triggers.devrev.DevRevNewSessionsTrigger` lets pass after its
#: events before it saves a position that counts them as reported: the triggerer hands events to Airflow's
#: database within a second or two, and a restart from a position saved before that would lose them instead
#: of repeating them. Airflow commits an event and the saved position separately (docs/distributed.md,
#: "Exactly once"), so the watch is at least once, and a DAG it schedules should key its effect by session id.
SAVE_DELAY = 10.0


class Handover:
    """
    The sessions waiting to be handed to Airflow, and the positions waiting to be saved.

    :param batch: Hand every queued session over in one event instead of one per event.
    """

    def __init__(self, *, batch: bool = False) -> None:
        self.batch = batch
        self._queue: deque[dict[str, Any]] = deque()
        self._queued = 0  # sessions ever queued
        self._handed_over = 0  # sessions ever taken, i.e. handed to Airflow
        # (sessions queued when it was taken, when the last of those was handed over, the position's value)
        self._waiting: deque[tuple[int, float | None, dict[str, Any]]] = deque()

    def __len__(self) -> int:
        return len(self._queue)

    def queue(self, sessions: list[dict[str, Any]], position: WatchPosition) -> None:
        """
        Queue a poll's new sessions.

        :param sessions: The sessions, in the order their events leave.
        :param position: The position once it counts them; its value as of now is what gets saved (the
            position goes on to count later polls' sessions, which this save must not).
        """
        self._queue.extend(sessions)
        self._queued += len(sessions)
        self._waiting.append((self._queued, None, position.to_json()))

    def take(self) -> list[dict[str, Any]]:
        """The sessions of the next event: the oldest queued one, or with ``batch`` every queued one."""
        if self.batch:
            sessions = list(self._queue)
            self._queue.clear()
        else:
            sessions = [self._queue.popleft()]
        return sessions

    def handed_over(self, now: float) -> None:
        """Every session taken so far is in Airflow's hands, as of ``now``."""
        self._handed_over = self._queued - len(self._queue)
        self._waiting = deque(
            (needs, left_at if left_at is not None or needs > self._handed_over else now, state)
            for needs, left_at, state in self._waiting
        )

    def ready(self, now: float) -> dict[str, Any] | None:
        """The newest position whose sessions all left at least :data:`SAVE_DELAY` ago (dropping it and older
        ones), or ``None``."""
        newest = None
        while self._waiting:
            _, left_at, state = self._waiting[0]
            if left_at is None or now - left_at < SAVE_DELAY:
                break
            newest = state
            self._waiting.popleft()
        return newest
