"""
:class:`DevRevNewSessionsTrigger`: watches for new sessions and fires one event per new session, the trigger of
an ``AssetWatcher`` (Airflow 3).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from datetime import datetime, timezone
from typing import Any

from airflow.triggers.base import TriggerEvent

from airflow_provider_devrev._compat import BaseEventTrigger
from airflow_provider_devrev.connection import HookOptions
from airflow_provider_devrev.contract import summarize_session
from airflow_provider_devrev.exceptions import DevRevError, DevRevInvalidInputError
from airflow_provider_devrev.listing import SeenSessions, created_at_of, session_query
from airflow_provider_devrev.policy import (
    SensorOutcome,
    describe_failure,
    next_check_delay,
    sensor_outcome,
)
from airflow_provider_devrev.triggers import classpath
from airflow_provider_devrev.triggers.session import MIN_POLL_WAIT

#: Longest wait between two polls of a :class:`DevRevNewSessionsTrigger` that keeps failing.
MAX_ERROR_WAIT = 600.0
#: Seconds a :class:`DevRevNewSessionsTrigger` lets pass after its events before it saves a position that
#: counts them as reported: the triggerer hands events to Airflow's database within a second or two, and a
#: restart from a position saved before that would lose them instead of repeating them.
SAVE_DELAY = 10.0
#: Default seconds between two events of one poll (see ``event_spacing``).
DEFAULT_EVENT_SPACING = 5.0


class DevRevNewSessionsTrigger(BaseEventTrigger):
    """
    Fire one event for each new session that matches, for as long as it runs: the trigger of an
    ``AssetWatcher`` (Airflow 3), so that each new crash session, say, starts a DAG run.

    Every ``poll_interval`` seconds it lists the sessions created in the last ``lookback`` seconds that
    match ``filters`` (``observability.sessions.list``) and fires ``{"session_id": ..., "session": {...}}``
    for each one it has not reported before. "New" means new to this trigger, not a recent ``created_at``:
    the SDKs upload a session after it ends, so it appears with a ``created_at`` in the past.

    Its first poll reports nothing: it records what already exists, so only sessions that appear after the
    watcher starts trigger runs. What it can and cannot guarantee:

    - While it runs, each matching session that appears is reported once.
    - A session uploaded more than ``lookback`` after it started is never reported.
    - Across a triggerer restart (or a move to another triggerer), on Airflow 3.3+ it keeps its position in
      the watched asset's state store (``asset_state_store``). The position counting an event as reported is
      saved at a poll at least :data:`SAVE_DELAY` seconds after the event, when the triggerer has long handed
      it to Airflow's database, so a restart can repeat recent events but does not lose one (at least once).
      On Airflow 3.0 to 3.2 there is no such store: a restarted trigger starts afresh, and sessions that
      appeared while it was not running are never reported (at most once). Pair it with a scheduled export
      to catch those.
    - Which events a DAG run gets is Airflow's call. Airflow 3.0 to 3.3 give a run the events up to the one
      that queued it; an event that arrives while the scheduler is queueing that run goes to the next run,
      which only the asset's next event starts (apache/airflow#54659, #56050). So the events of one poll are
      fired ``event_spacing`` seconds apart, giving the scheduler time to start a run for each; a DAG should
      still read every event of ``triggering_asset_events``, since a slow scheduler can fold several together.

    Errors never end it: a 429, 5xx or lost connection is retried at the next poll (no sooner than a
    ``Retry-After``), and a final error (a revoked token, a refused filter) or any other exception is logged
    and retried with a growing wait, up to :data:`MAX_ERROR_WAIT`, until the connection or the DAG is fixed.
    A failed read of the saved position is retried the same way. If ``lookback`` grows between two runs of
    the watch, the sessions older than the old window are recorded without firing: they are not new.

    :param platform: ``android``, ``ios`` or ``web``.
    :param version_key: The app version key.
    :param filters: DevRev session filters for the platform's type, e.g. ``{"is_crash": True}``.
    :param devrev_conn_id: The Airflow connection to use.
    :param poll_interval: Seconds between polls.
    :param lookback: How far back, in seconds of ``created_at``, each poll looks (default one day).
    :param page_size: Sessions per list request (1 to 100); DevRev's default when left out.
    :param event_spacing: Seconds between two events of one poll (default 5), so that each starts its own
        DAG run (see above); 0 fires them together. A burst of N sessions takes about N times this long.
    :param hook_options: ``timeout``, ``max_retries``, ``max_retry_wait`` for the hook (plain numbers).
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
    ) -> None:
        super().__init__()
        # Checked now, so a bad argument is a DAG import error rather than a trigger failing in a loop.
        session_query(platform, version_key, filters=filters, page_size=page_size)
        for name, value in (("poll_interval", poll_interval), ("lookback", lookback)):
            if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
                raise DevRevInvalidInputError(name, value, "must be a number of seconds > 0")
        if isinstance(event_spacing, bool) or not isinstance(event_spacing, int | float) or event_spacing < 0:
            raise DevRevInvalidInputError("event_spacing", event_spacing, "must be a number of seconds >= 0")
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

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(devrev_conn_id={self.devrev_conn_id!r}, platform={self.platform!r}, "
            f"version_key={self.version_key!r}, filters={self.filters!r})"
        )

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Classpath and JSON-safe arguments; never the token, and nothing that changes between parses
        (Airflow identifies an event trigger by the hash of these arguments)."""
        return (
            classpath(self),
            {
                "platform": self.platform,
                "version_key": self.version_key,
                "filters": dict(self.filters),
                "devrev_conn_id": self.devrev_conn_id,
                "poll_interval": self.poll_interval,
                "lookback": self.lookback,
                "page_size": self.page_size,
                "event_spacing": self.event_spacing,
                "hook_options": dict(self.hook_options),
            },
        )

    @property
    def state_key(self) -> str:
        """The asset-state-store key of this watch: two watches of one asset (other filters, another DevRev
        connection) never mix; a changed poll interval or lookback keeps the position."""
        what = json.dumps(
            [self.devrev_conn_id, self.platform, self.version_key, self.filters], sort_keys=True, default=str
        )
        return "devrev-seen-sessions-" + hashlib.sha256(what.encode("utf-8")).hexdigest()[:16]

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Poll forever; yield one event per new matching session."""
        from airflow_provider_devrev.hooks._async_transport import shared_session
        from airflow_provider_devrev.hooks.devrev import DevRevHook

        hook = DevRevHook(self.devrev_conn_id, async_sleep=type(self).sleep, **self.hook_options)
        store = _state_store(self)
        restored = await self._restore(store)
        seen, saved_lookback = restored if restored is not None else (SeenSessions(), None)
        # Positions that count fired events as reported, with when the last of those fired; each is saved once
        # SAVE_DELAY has passed, so a restart can repeat an event but not lose one.
        unsaved: list[tuple[float, dict[str, Any]]] = []
        first_poll, failures = True, 0
        async with shared_session():
            while True:
                now = type(self).clock()
                try:
                    fresh = await self._list_unseen(hook, seen, now, bodies=not first_poll or restored is not None)
                except Exception as err:  # whatever it is, an ended watch would silently stop the DAG's schedule
                    failures += 1
                    await type(self).sleep(self._error_wait(err, failures))
                    continue
                failures = 0
                ready = [state for fired_at, state in unsaved if now - fired_at >= SAVE_DELAY]
                if ready:
                    await self._save(store, ready[-1])
                    unsaved = [(fired_at, state) for fired_at, state in unsaved if now - fired_at < SAVE_DELAY]
                to_fire = self._first_poll(fresh, now, saved_lookback) if first_poll else fresh
                for session in fresh:
                    seen.add(session, lookback=self.lookback, now=now)
                seen.forget_expired(now)
                if first_poll and not to_fire:
                    # Only what it records without firing is saved at once; a position that counts fired
                    # events waits for SAVE_DELAY like every other.
                    await self._save(store, self._state(seen))
                first_poll = False
                for number, session in enumerate(to_fire):
                    if number and self.event_spacing:
                        await type(self).sleep(self.event_spacing)
                    self.log.info("New %s", summarize_session(session))
                    yield TriggerEvent({"session_id": session.get("session_id"), "session": session})
                if to_fire:
                    unsaved.append((type(self).clock(), self._state(seen)))
                await type(self).sleep(self.poll_interval)

    def _first_poll(
        self, fresh: list[dict[str, Any]], now: float, saved_lookback: float | None
    ) -> list[dict[str, Any]]:
        """
        Which unseen sessions of the first poll fire. With no saved position (a new watch): none, they are
        what existed before it. After a restart: all, unless the lookback has grown since the position was
        saved; then the sessions older than the old window are recorded without firing, since the watch
        never looked there and they are not new.
        """
        if saved_lookback is None:
            self.log.info(
                "Watching for new DevRev sessions (%s, %s, filters %s); %d existing ones will not fire",
                self.platform,
                self.version_key,
                self.filters,
                len(fresh),
            )
            return []
        if saved_lookback >= self.lookback:
            return fresh
        cutoff = now - saved_lookback

        def older(session: dict[str, Any]) -> bool:
            created = created_at_of(session)
            return created is not None and created.timestamp() < cutoff

        to_fire = [session for session in fresh if not older(session)]
        if len(to_fire) < len(fresh):
            self.log.info(
                "lookback grew to %g s: %d older sessions recorded without firing",
                self.lookback,
                len(fresh) - len(to_fire),
            )
        return to_fire

    def _state(self, seen: SeenSessions) -> dict[str, Any]:
        return {**seen.to_json(), "lookback": self.lookback}

    async def _list_unseen(
        self, hook: Any, seen: SeenSessions, now: float, *, bodies: bool = True
    ) -> list[dict[str, Any]]:
        # The whole listing must succeed before anything counts as seen: a poll that fails half-way is
        # repeated in full, and keeps only the unseen sessions in memory meanwhile (a new watch's first poll,
        # which fires nothing, only their ids and dates: the whole lookback window may be large).
        after = datetime.fromtimestamp(now - self.lookback, tz=timezone.utc)
        query = session_query(
            self.platform, self.version_key, filters=self.filters, created_after=after, page_size=self.page_size
        )
        fresh: dict[str, dict[str, Any]] = {}
        async for session in hook.aiter_sessions(query):
            session_id = session.get("session_id")
            # A session without an id cannot be told apart from the next one: the contract requires it.
            if isinstance(session_id, str) and session_id not in seen:
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

    async def _restore(self, store: Any) -> tuple[SeenSessions, float] | None:
        """
        The saved position and the lookback it was saved with, or ``None`` when there is none to use (no
        store, nothing saved, or a value this trigger did not write). A failed read is retried: starting
        afresh instead would record, without firing, whatever appeared while the watch was down.
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
        seen = SeenSessions.from_json(stored)
        if seen is None:
            if stored is not None:
                self.log.warning("This watch's saved position is not one it wrote; starting afresh")
            return None
        lookback = stored.get("lookback")
        saved_lookback = float(lookback) if isinstance(lookback, int | float) and lookback > 0 else self.lookback
        self.log.info("Resuming with %d sessions already reported", len(seen))
        return seen, saved_lookback

    async def _save(self, store: Any, state: dict[str, Any]) -> None:
        if store is None:
            return
        try:
            await store.aset(self.state_key, state)
        except Exception as err:
            self.log.warning("Could not save this watch's position (%s); a restart would start afresh", err)


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
