"""
:class:`DevRevNewSessionsTrigger`: watches for new sessions and fires an event per new session (or per poll,
with ``batch=True``), the trigger of an ``AssetWatcher`` (Airflow 3).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from airflow.triggers.base import TriggerEvent

from airflow_provider_devrev import metrics
from airflow_provider_devrev._compat import BaseEventTrigger
from airflow_provider_devrev.connection import HookOptions
from airflow_provider_devrev.contract import summarize_session
from airflow_provider_devrev.exceptions import DevRevError, DevRevInvalidInputError
from airflow_provider_devrev.listing import created_at_of, session_query
from airflow_provider_devrev.policy import (
    SensorOutcome,
    describe_failure,
    next_check_delay,
    sensor_outcome,
)
from airflow_provider_devrev.triggers import classpath
from airflow_provider_devrev.triggers._handover import Handover
from airflow_provider_devrev.triggers.session import MIN_POLL_WAIT
from airflow_provider_devrev.watch_position import MAX_RECENT_IDS, WatchPosition, to_micros

#: Longest wait between two polls of a :class:`DevRevNewSessionsTrigger` that keeps failing.
MAX_ERROR_WAIT = 600.0
#: Default seconds between two events (see ``event_spacing``).
DEFAULT_EVENT_SPACING = 5.0


class DevRevNewSessionsTrigger(BaseEventTrigger):
    """
    Fire an event for each new session that matches, for as long as it runs: the trigger of an
    ``AssetWatcher`` (Airflow 3), so that each new crash session, say, starts a DAG run.

    Every ``poll_interval`` seconds it lists the matching sessions (``observability.sessions.list``) created
    since its position's floor and fires ``{"session_id": ..., "session": {...}}`` for each one it has not
    reported before. "New" means new to this trigger, not a recent ``created_at``: the SDKs upload a session
    after it ends, so it appears with a ``created_at`` in the past.

    Its state is small and its cost flat (see :mod:`~airflow_provider_devrev.watch_position`): the newest
    ``created_at`` seen (the high-water mark) and the ids of the reported sessions created at or after
    ``high_water - overlap``, at most 64 of them (a few KB). Each poll lists only from there, so it costs
    one request plus one per ``page_size`` new sessions, whatever the traffic.

    Its first poll reports nothing: it records what already exists, so only sessions that appear after the
    watcher starts trigger runs. What it can and cannot guarantee:

    - While it runs, each matching session that appears is reported once, if its ``created_at`` is at or
      after the floor when it appears: within ``overlap`` (default: ``lookback``) of the newest session seen,
      and not older than the 64 newest reported ones. So a late upload is reported while traffic is light;
      under heavy traffic the window narrows to the last 64 sessions (logged), and a session uploaded behind
      more than 64 newer ones is never reported. Pair the watcher with a scheduled export (``settle``) to
      catch those.
    - A session uploaded more than ``lookback`` after it was created is never reported.
    - Across a triggerer restart (or a move to another triggerer), on Airflow 3.3+ it keeps its position in
      the watched asset's state store (``asset_state_store``). The position counting an event as reported is
      saved at a poll at least :data:`SAVE_DELAY` seconds after the event, when the triggerer has long handed
      it to Airflow's database, so a restart can repeat recent events but does not lose one (at least once).
      On Airflow 3.0 to 3.2 there is no such store: a restarted trigger starts afresh, and sessions that
      appeared while it was not running are never reported (at most once).
    - Events leave at ``event_spacing`` seconds apart, from a queue the loop drains between polls: a burst
      never delays the next poll. Airflow 3.0 to 3.3 give a DAG run the events up to the one that queued it;
      an event that arrives while the scheduler is queueing that run goes to the next run, which only the
      asset's next event starts (apache/airflow#54659, #56050): the spacing gives the scheduler time to start
      a run for each. A DAG should still read every event of ``triggering_asset_events``. With ``batch=True``
      each poll's new sessions go out as one event instead,
      ``{"session_ids": [...], "sessions": [...]}``, for DAGs that triage in batches.

    Errors never end it: a 429, 5xx or lost connection is retried at the next poll (no sooner than a
    ``Retry-After``), and a final error (a revoked token, a refused filter) or any other exception is logged
    and retried with a growing wait, up to :data:`MAX_ERROR_WAIT`, until the connection or the DAG is fixed.
    A failed read of the saved position is retried the same way. Raising ``lookback`` never makes old
    sessions fire: the watch lists nothing below its saved floor.

    :param platform: ``android``, ``ios`` or ``web``.
    :param version_key: The app version key.
    :param filters: DevRev session filters for the platform's type, e.g. ``{"is_crash": True}``.
    :param devrev_conn_id: The Airflow connection to use.
    :param poll_interval: Seconds between polls.
    :param lookback: How far back, in seconds of ``created_at``, the first poll looks and any poll may look
        (default one day).
    :param page_size: Sessions per list request (1 to 100); DevRev's default when left out.
    :param event_spacing: Seconds between two events (default 5), so that each starts its own DAG run (see
        above); 0 fires a poll's events together. N queued sessions leave in about N times this long, while
        polling goes on.
    :param hook_options: ``timeout``, ``max_retries``, ``max_retry_wait`` for the hook (plain numbers).
    :param overlap: How far below the newest ``created_at`` seen a late upload is still reported, in seconds
        (default: ``lookback``); the 64-id bound may narrow it under heavy traffic.
    :param batch: One event per poll holding all its new sessions, instead of one per session.
    """

    clock: Callable[[], float] = staticmethod(time.time)
    sleep: Callable[[float], Awaitable[Any]] = staticmethod(asyncio.sleep)

    def __init__(
        self,
        *,
        platform: str,
        version_key: str,
        filters: Mapping[str, Any] | None = None,
        devrev_conn_id: str = "devrev_default",
        poll_interval: float = 60.0,
        lookback: float = 86400.0,
        page_size: int | None = None,
        event_spacing: float = DEFAULT_EVENT_SPACING,
        hook_options: Mapping[str, Any] | None = None,
        overlap: float | None = None,
        batch: bool = False,
    ) -> None:
        super().__init__()
        # Checked now, so a bad argument is a DAG import error rather than a trigger failing in a loop.
        session_query(platform, version_key, filters=filters, page_size=page_size)
        for name, value in (("poll_interval", poll_interval), ("lookback", lookback), ("overlap", overlap)):
            if name == "overlap" and value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
                raise DevRevInvalidInputError(name, value, "must be a number of seconds > 0")
        if isinstance(event_spacing, bool) or not isinstance(event_spacing, int | float) or event_spacing < 0:
            raise DevRevInvalidInputError("event_spacing", event_spacing, "must be a number of seconds >= 0")
        if not isinstance(batch, bool):
            raise DevRevInvalidInputError("batch", batch, "must be True or False")
        self.platform = platform
        self.version_key = version_key
        # Sorted, so that reordering the filters in a DAG file keeps the same trigger (Airflow hashes these).
        self.filters = dict(sorted((filters or {}).items()))
        self.devrev_conn_id = devrev_conn_id
        self.poll_interval = max(float(poll_interval), MIN_POLL_WAIT)
        self.lookback = float(lookback)
        self.page_size = page_size
        self.event_spacing = float(event_spacing)
        self.hook_options = HookOptions(**(hook_options or {})).as_kwargs()
        self.overlap = None if overlap is None else float(overlap)
        self.batch = batch

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(devrev_conn_id={self.devrev_conn_id!r}, platform={self.platform!r}, "
            f"version_key={self.version_key!r}, filters={self.filters!r})"
        )

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Classpath and JSON-safe arguments; never the token, and nothing that changes between parses
        (Airflow identifies an event trigger by the hash of these arguments). ``overlap`` and ``batch`` are
        left out at their defaults, so a watcher declared before they existed keeps its identity."""
        kwargs: dict[str, Any] = {
            "platform": self.platform,
            "version_key": self.version_key,
            "filters": dict(self.filters),
            "devrev_conn_id": self.devrev_conn_id,
            "poll_interval": self.poll_interval,
            "lookback": self.lookback,
            "page_size": self.page_size,
            "event_spacing": self.event_spacing,
            "hook_options": dict(self.hook_options),
        }
        if self.overlap is not None:
            kwargs["overlap"] = self.overlap
        if self.batch:
            kwargs["batch"] = True
        return classpath(self), kwargs

    @property
    def state_key(self) -> str:
        """The asset-state-store key of this watch: two watches of one asset (other filters, another DevRev
        connection) never mix; a changed poll interval, lookback, overlap or batch keeps the position."""
        what = json.dumps(
            [self.devrev_conn_id, self.platform, self.version_key, self.filters], sort_keys=True, default=str
        )
        return "devrev-seen-sessions-" + hashlib.sha256(what.encode("utf-8")).hexdigest()[:16]

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Poll forever; hand each poll's new sessions to Airflow from a queue drained between polls."""
        from airflow_provider_devrev.hooks._async_transport import shared_session
        from airflow_provider_devrev.hooks.devrev import DevRevHook

        clock, sleep = type(self).clock, type(self).sleep
        hook = DevRevHook(self.devrev_conn_id, async_sleep=sleep, **self.hook_options)
        store = _state_store(self)
        position = await self._restore(store)
        baseline = position is None
        if position is None:
            position = WatchPosition.start(clock(), self.lookback)
        handover = Handover(batch=self.batch)
        next_poll = next_event = clock()
        failures = 0
        async with shared_session():
            while True:
                now = clock()
                if now >= next_poll:
                    try:
                        fresh = await self._list_unseen(hook, position, now, bodies=not baseline)
                    except Exception as err:  # whatever it is, an ended watch would silently stop the DAG's schedule
                        metrics.incr("watcher.poll_errors")
                        failures += 1
                        next_poll = now + self._error_wait(err, failures)
                    else:
                        metrics.incr("watcher.polls")
                        failures = 0
                        next_poll = now + self.poll_interval
                        ready = handover.ready(now)
                        if ready is not None:
                            await self._save(store, ready)
                        self._record(position, fresh, now)
                        if baseline:
                            self.log.info(
                                "Watching for new DevRev sessions (%s, %s, filters %s); %d existing ones will not fire",
                                self.platform,
                                self.version_key,
                                self.filters,
                                len(fresh),
                            )
                            # Recorded without firing: nothing to hand over first, so it is saved at once.
                            await self._save(store, position.to_json())
                            baseline = False
                        elif fresh:
                            handover.queue(fresh, position)
                            # One line per poll: a burst of a thousand must not be a thousand INFO lines.
                            self.log.info(
                                "%d new DevRev sessions (%s%s); %d waiting to be handed to Airflow",
                                len(fresh),
                                ", ".join(str(session.get("session_id")) for session in fresh[:3]),
                                ", ..." if len(fresh) > 3 else "",
                                len(handover),
                            )
                while handover and clock() >= next_event:
                    sessions = handover.take()
                    metrics.incr("watcher.events")
                    metrics.incr("watcher.sessions", len(sessions))
                    yield self._event(sessions)
                    handover.handed_over(clock())
                    next_event = clock() + self.event_spacing
                    if self.event_spacing:
                        break
                wake = min(next_poll, next_event) if handover else next_poll
                wait = wake - clock()
                if wait > 0:
                    await sleep(wait)

    def _event(self, sessions: list[dict[str, Any]]) -> TriggerEvent:
        """The event of the sessions :meth:`Handover.take` gave: one session's, or with ``batch`` all of them."""
        if self.batch:
            self.log.info("%d new DevRev sessions, in one event", len(sessions))
            return TriggerEvent(
                {"session_ids": [session.get("session_id") for session in sessions], "sessions": sessions}
            )
        [session] = sessions
        self.log.debug("New %s", summarize_session(session))
        return TriggerEvent({"session_id": session.get("session_id"), "session": session})

    def _record(self, position: WatchPosition, fresh: list[dict[str, Any]], now: float) -> None:
        dropped = position.record(
            ((str(session["session_id"]), _created_micros(session, now)) for session in fresh),
            overlap=self.lookback if self.overlap is None else self.overlap,
            now=now,
        )
        if dropped:
            self.log.info(
                "More than %d sessions within the overlap: late uploads created before %s will not be reported",
                MAX_RECENT_IDS,
                position.listing_start(now, self.lookback).isoformat(),
            )

    async def _list_unseen(
        self, hook: Any, position: WatchPosition, now: float, *, bodies: bool = True
    ) -> list[dict[str, Any]]:
        # The whole listing must succeed before anything counts as seen: a poll that fails half-way is
        # repeated in full, and keeps only the unseen sessions in memory meanwhile (a new watch's first poll,
        # which fires nothing, only their ids and dates: the whole lookback window may be large).
        query = session_query(
            self.platform,
            self.version_key,
            filters=self.filters,
            created_after=position.listing_start(now, self.lookback),
            page_size=self.page_size,
        )
        fresh: dict[str, dict[str, Any]] = {}
        async for session in hook.aiter_sessions(query):
            session_id = session.get("session_id")
            # A session without an id cannot be told apart from the next one: the contract requires it.
            if isinstance(session_id, str) and position.is_new(session_id, _created_micros(session, now)):
                kept = session if bodies else {"session_id": session_id, "created_at": session.get("created_at")}
                fresh.setdefault(session_id, kept)
        return list(fresh.values())

    def _error_wait(self, err: Exception, failures: int) -> float:
        transient = isinstance(err, DevRevError) and sensor_outcome(err) is not SensorOutcome.FAIL
        wait = self.poll_interval if transient else min(MAX_ERROR_WAIT, self.poll_interval * 2.0 ** (failures - 1))
        wait = max(wait, self.poll_interval)
        failure = describe_failure(err) if isinstance(err, DevRevError) else type(err).__name__
        log = self.log.warning if transient else self.log.error
        log("Listing new DevRev sessions failed (%s: %s); next try in %.0f s", failure, err, wait)
        return next_check_delay(wait, err if isinstance(err, DevRevError) else None)

    async def _restore(self, store: Any) -> WatchPosition | None:
        """
        The saved position, or ``None`` when there is none to use (no store, nothing saved, or a value this
        trigger did not write). A failed read is retried: starting afresh instead would record, without
        firing, whatever appeared while the watch was down.
        """
        if store is None:
            return None
        failures = 0
        while True:
            try:
                stored = await store.aget(self.state_key)
                break
            except Exception as err:  # the store is Airflow's; its failure must not end the watch
                failures += 1
                wait = min(MAX_ERROR_WAIT, self.poll_interval * 2.0 ** (failures - 1))
                self.log.warning("Could not read this watch's saved position (%s); trying again in %.0f s", err, wait)
                await type(self).sleep(wait)
        position = WatchPosition.from_json(stored, now=type(self).clock(), lookback=self.lookback)
        if position is None:
            if stored is not None:
                self.log.warning("This watch's saved position is not one it wrote; starting afresh")
            return None
        self.log.info(
            "Resuming with %d sessions already reported, listing from %s",
            len(position),
            position.listing_start(type(self).clock(), self.lookback).isoformat(),
        )
        return position

    async def _save(self, store: Any, state: dict[str, Any]) -> None:
        if store is None:
            return
        try:
            await store.aset(self.state_key, state)
        except Exception as err:
            self.log.warning("Could not save this watch's position (%s); a restart would start afresh", err)


def _created_micros(session: Mapping[str, Any], now: float) -> int:
    # A session without a readable created_at (the contract requires one) counts as created now.
    created = created_at_of(session)
    return to_micros(created if created is not None else datetime.fromtimestamp(now, tz=UTC))


def _state_store(trigger: Any) -> Any:
    """
    The accessor of the watched asset's state store (Airflow 3.3+), or ``None`` where there is none: older
    Airflow, a trigger not run by a triggerer (tests, ``dag.test()``), or one trigger watched for several
    assets, where the accessors cannot tell which asset's store to use.
    """
    accessors = getattr(trigger, "asset_state_store", None)
    if accessors is None:
        return None
    try:
        accessors._single_accessor()  # raises for zero or several assets
    except Exception:
        return None
    return accessors
