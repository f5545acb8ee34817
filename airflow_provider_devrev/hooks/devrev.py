"""The DevRev hook: one connection, two transports (``requests`` on workers, ``aiohttp`` in triggers)."""

from __future__ import annotations

import copy
import dataclasses
import functools
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from airflow_provider_devrev.connection import ConnectionSettings, HookOptions
from airflow_provider_devrev.contract import (
    ApiRequest,
    dev_users_self_request,
    get_session_developer_info_request,
    get_session_recording_request,
    get_session_request,
    recording_kind,
)
from airflow_provider_devrev.exact_listing import ExactListing
from airflow_provider_devrev.exceptions import DevRevAuthError, DevRevError
from airflow_provider_devrev.hooks import _sync_transport
from airflow_provider_devrev.hooks._credentials import ConnectionReader, lookups_started
from airflow_provider_devrev.hooks._streaming import StreamedRecording as StreamedRecording
from airflow_provider_devrev.hooks._streaming import stream_checked
from airflow_provider_devrev.hooks._sync_transport import MAX_ERROR_BODY_BYTES as MAX_ERROR_BODY_BYTES
from airflow_provider_devrev.hooks._sync_transport import STREAM_CHUNK_BYTES as STREAM_CHUNK_BYTES
from airflow_provider_devrev.links import template_problem
from airflow_provider_devrev.listing import SessionQuery, parse_page, session_query

if TYPE_CHECKING:
    import requests

#: A hook's options when none is given (the dataclass is frozen, so one instance serves every such hook).
_NO_OPTIONS = HookOptions()


class DevRevHook(ConnectionReader):
    """
    Talk to DevRev's observability API with a ``devrev`` connection.

    The connection's password is the API token; its host is the base URL (empty means
    ``https://api.devrev.ai``). Extras: ``timeout``, ``max_retries``, ``max_retry_wait``, ``request_timeout``,
    ``api_scope`` and ``allow_insecure_http``; the keyword arguments below override the first four.
    ``proxy``, ``ca_bundle`` and ``verify_tls`` (or the environment's proxy and CA variables) set the route
    and the trust of both transports alike (:mod:`airflow_provider_devrev.network`).

    Nothing is looked up when the hook is built: the connection is read on first use, and one keep-alive
    HTTP session serves every call. A call is retried on 429 (after ``Retry-After``), 500/502/503/504,
    network failures and timeouts; other statuses raise their typed ``DevRevError`` after one request, but a
    401 reads the connection again, once, and if its token or host changed (rotated) the request is sent
    again with them. A failed lookup is retried like a 503; a missing connection is final.

    :param devrev_conn_id: The Airflow connection to use.
    :param timeout: Seconds to wait for each read of an answer (default 30; connecting waits at most 10).
    :param max_retries: Retries after the first attempt (default 5).
    :param max_retry_wait: The longest single wait accepted from a ``Retry-After`` (default 300 s). A longer
        one fails the call at once, with the wait DevRev asked for in the message.
    :param request_timeout: Seconds a whole request may take, body included (default 300), each attempt alike.
    :param sleep: How the sync transport waits between retries (tests pass a fake).
    :param async_sleep: How the async transport waits between retries (tests pass a fake).
    """

    conn_name_attr = "devrev_conn_id"
    default_conn_name = "devrev_default"
    conn_type = "devrev"
    hook_name = "DevRev"

    def __init__(
        self,
        devrev_conn_id: str = default_conn_name,
        *,
        timeout: float | None = None,
        max_retries: int | None = None,
        max_retry_wait: float | None = None,
        request_timeout: float | None = None,
        sleep: Callable[[float], Any] | None = None,
        async_sleep: Callable[[float], Awaitable[Any]] | None = None,
    ) -> None:
        super().__init__()
        self.devrev_conn_id = devrev_conn_id
        options = (timeout, max_retries, max_retry_wait, request_timeout)  # HookOptions' fields, in order
        # No options is the common case, and a triggerer builds a hook per wait: no dataclass to validate then.
        self.options = _NO_OPTIONS if options == (None,) * 4 else HookOptions(*options)
        self._sleep = sleep or time.sleep
        self._async_sleep = async_sleep
        self._settings = None
        self._credentials = None
        self._lookup_number = 0
        self._http = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(devrev_conn_id={self.devrev_conn_id!r})"

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """The connection form on Airflow 2.11; Airflow 3.2+ reads the same from provider info."""
        from airflow_provider_devrev.get_provider_info import UI_FIELD_BEHAVIOUR

        return UI_FIELD_BEHAVIOUR

    # -- connection ----------------------------------------------------------------------------------

    @property
    def settings(self) -> ConnectionSettings:
        """The validated connection, read on first use (a blocking lookup: not for an event loop)."""
        if self._settings is None:
            self._use(self._read_settings())
        return self._current()

    async def aget_settings(self) -> ConnectionSettings:
        """The validated connection, read without blocking the event loop (for triggers)."""
        if self._settings is None:
            self._use(await self._aread_settings())
        return self._current()

    def get_conn(self) -> requests.Session:
        """The hook's keep-alive ``requests.Session``, built on first use with the connection's headers."""
        if self._http is None:
            self._http = _sync_transport.new_session(self.settings)
        return self._http

    def close(self) -> None:
        """Close the keep-alive connection; the next call opens a new one."""
        if self._http is not None:
            self._http.close()
            self._http = None

    # -- API ------------------------------------------------------------------------------------------

    def get_session(self, platform: str, session_id: str, version_key: str) -> dict[str, Any]:
        """
        Fetch one session with ``GET /observability.sessions.get``.

        The arguments are checked before any request is sent.

        :param platform: ``android``, ``ios`` or ``web``.
        :param session_id: The session's id, as DevRev's SDK reported it.
        :param version_key: The app's version key the session was recorded under.
        :return: The ``session`` object exactly as DevRev sent it (a JSON-serializable dict).
        :raises DevRevNotFoundError: no such session (yet).
        :raises DevRevError: any other failure, typed by status, after the retries allowed.
        """
        return self.call(get_session_request(platform, session_id, version_key))

    async def aget_session(self, platform: str, session_id: str, version_key: str) -> dict[str, Any]:
        """:meth:`get_session` without blocking the event loop, on the loop's shared connection pool."""
        return await self.acall(get_session_request(platform, session_id, version_key))

    def get_session_recording(
        self, session_id: str, version_key: str, *, recording_id: str | None = None, tab_id: str | None = None
    ) -> dict[str, Any]:
        """
        Fetch a session's recording with ``observability.sessions.data.get``: a mobile session's by
        ``recording_id`` (one of its ``recording_ids``), a web session's by ``tab_id`` (one of its ``tab_ids``).

        Exactly one of the two is required; the arguments are checked before any request is sent. The answer
        holds everything in memory: for a large recording, stream it with :meth:`stream_session_recording`.

        :param session_id: The session's id.
        :param version_key: The app version key the session was recorded under.
        :param recording_id: The mobile recording to fetch.
        :param tab_id: The web tab to fetch.
        :return: The body exactly as DevRev sent it, unknown fields included: a union on ``recording``
            (``mobile_recording``: ``observability_sessions_log_data`` with the crash or ANR log,
            ``recording_events_timeline``, ``app_launch``, ...; ``web_recording``: ``timeline_data``,
            ``console_metadata``, ``network_metadata``, ``replay_data``, ...).
        :raises DevRevInvalidInputError: neither or both of ``recording_id`` and ``tab_id``, or an empty id.
        :raises DevRevNotFoundError: no such session, recording or tab.
        :raises DevRevError: any other failure, typed by status, after the retries allowed.
        """
        request = get_session_recording_request(session_id, version_key, recording_id=recording_id, tab_id=tab_id)
        recording = self.call(request)
        recording_kind(request, recording)
        return recording

    async def aget_session_recording(
        self, session_id: str, version_key: str, *, recording_id: str | None = None, tab_id: str | None = None
    ) -> dict[str, Any]:
        """:meth:`get_session_recording` without blocking the event loop."""
        request = get_session_recording_request(session_id, version_key, recording_id=recording_id, tab_id=tab_id)
        recording = await self.acall(request)
        recording_kind(request, recording)
        return recording

    def stream_session_recording(
        self,
        session_id: str,
        version_key: str,
        write: Callable[[bytes], Any],
        *,
        recording_id: str | None = None,
        tab_id: str | None = None,
    ) -> StreamedRecording:
        """
        :meth:`get_session_recording`, handing the body to ``write`` chunk by chunk as it arrives, never holding
        it whole; its JSON is checked on the way (see :mod:`~airflow_provider_devrev.hooks._streaming`).

        Failures before the first byte of the body are retried as :meth:`get_session` retries them. Once bytes
        have been written a failure is final: a body cut mid-stream raises
        :class:`~airflow_provider_devrev.exceptions.DevRevUnexpectedResponseError` (``error_type``
        ``incomplete_body``), and so does a body that turns out not to be complete JSON. Whoever owns ``write``
        must then discard what it got. An exception raised by ``write`` ends the call as it is.

        :return: How many bytes were written, and the recording's kind.
        """
        request = get_session_recording_request(session_id, version_key, recording_id=recording_id, tab_id=tab_id)
        return stream_checked(self.call_streaming, request, write)

    def get_session_developer_info(self, session_id: str, version_key: str, tab_id: str) -> dict[str, Any]:
        """
        Fetch a web session's console and network data with ``POST /observability.sessions.developer-info.get``.

        :param session_id: The web session's id.
        :param version_key: The app version key the session was recorded under.
        :param tab_id: The tab (one of the session's ``tab_ids``).
        :return: The body exactly as DevRev sent it: ``console_data`` and ``network_data`` lists, whose items
            keep every field DevRev sends (the contract knows only some of them).
        :raises DevRevInvalidInputError: an empty or missing argument, before anything is sent.
        :raises DevRevError: a failure, typed by status, after the retries allowed.
        """
        return self.call(get_session_developer_info_request(session_id, version_key, tab_id))

    async def acall(self, request: ApiRequest, *, deadline: float | None = None) -> dict[str, Any]:
        """:meth:`call`, async: the trigger builds its request once and sends it at every poll."""
        acall = _async_send()
        settings = await self.aget_settings()
        sent_after = lookups_started()
        try:
            return await acall(request, settings, sleep=self._async_sleep, log=self._retry_log, deadline=deadline)
        except DevRevAuthError as err:
            unauthorized = err
        # Outside the except clause: a failure from here on is not chained to the 401.
        if not await self._arotated(settings, sent_after=sent_after):
            raise unauthorized
        return await acall(request, self._current(), sleep=self._async_sleep, log=self._retry_log, deadline=deadline)

    def _retry_log(self) -> Any:
        # For the transports, which ask only when they have a retry to log: on Airflow 3 a hook's logger is
        # built at its first use, and a trigger builds a hook per wait.
        return self.log

    def iter_sessions(
        self,
        platform: str,
        version_key: str,
        *,
        type: str | None = None,
        filters: Mapping[str, Any] | None = None,
        created_after: Any = None,
        created_before: Any = None,
        page_size: int | None = None,
    ) -> Iterator[dict[str, Any]]:
        """
        Every session that matches, each once, page after page of ``observability.sessions.list``.

        Exact whatever DevRev's cursor is (see :mod:`airflow_provider_devrev.exact_listing`): pages are asked
        for by ``created_at`` range, so a session present for the whole listing is yielded exactly once and one
        added or removed during it at most once. A generator: one page is held at a time, plus the ids at the
        range's ends, so memory stays flat however many sessions match. Each page request has the hook's
        timeouts and retries; a retried page (after a 429, say) is asked for again as it was. All arguments
        are checked before the first request. The first page is asked for with the contract's GET form when
        there are no filters or dates, every later one with the POST form (the only one with a range).

        :param platform: ``android``, ``ios`` or ``web``.
        :param version_key: The app version key.
        :param type: ``mobile`` or ``web``; follows from ``platform`` when left out.
        :param filters: DevRev's session filters for that type, e.g. ``{"is_crash": True, "app_version":
            ["5.2.0"]}``; a name the contract does not define is refused (DevRev would ignore it).
        :param created_after: Keep sessions created at or after this time (a timezone-aware ``datetime``,
            pendulum's included, or ISO-8601 text with an offset).
        :param created_before: Keep sessions created strictly before this time. DevRev's own range is
            inclusive at both ends, so the hook asks up to the last nanosecond before it and drops any session
            at ``created_before`` a server sends anyway: consecutive intervals ``[a, b)``, ``[b, c)`` never
            share or miss a session.
        :param page_size: Sessions per request (1 to 100); DevRev's default when left out.
        :raises DevRevInvalidInputError: a bad argument, before anything is sent.
        :raises DevRevError: a page failed after the retries allowed.
        """
        query = session_query(
            platform,
            version_key,
            type=type,
            filters=filters,
            created_after=created_after,
            created_before=created_before,
            page_size=page_size,
        )
        return self._iter_pages(query)

    def _iter_pages(self, query: SessionQuery) -> Iterator[dict[str, Any]]:
        # Separate from iter_sessions so that bad arguments raise when it is called, not at the first next().
        from airflow_provider_devrev.progress import Progress

        listing = ExactListing(query)
        progress = Progress(self.log, f"Listing {query.platform} sessions")
        while (request := listing.next_request()) is not None:
            kept = listing.receive(request, parse_page(request, self.call(request)))
            progress.add(pages=1, sessions=len(kept))
            yield from kept

    async def aiter_sessions(self, query: SessionQuery) -> AsyncIterator[dict[str, Any]]:
        """:meth:`iter_sessions` without blocking the event loop, for a query built with ``session_query``."""
        from airflow_provider_devrev.hooks._async_transport import shared_session

        listing = ExactListing(query)
        # Held across the pages, so they reuse one warm connection even when nothing else holds the pool.
        async with shared_session():
            while (request := listing.next_request()) is not None:
                for session in listing.receive(request, parse_page(request, await self.acall(request))):
                    yield session

    def get_sessions(
        self,
        platform: str,
        version_key: str,
        session_ids: Iterable[str],
        *,
        max_concurrency: int = 8,
        skip_missing: bool = False,
    ) -> list[dict[str, Any]]:
        """
        Fetch many sessions concurrently, in the order of ``session_ids``.

        At most ``max_concurrency`` requests are in flight. A 429 slows the batch down rather than failing it:
        every worker pauses until DevRev's ``Retry-After`` has passed and the number in flight is halved, then
        grows back by one per round of successes. Only a ``Retry-After`` beyond ``max_retry_wait``, or 20
        rate-limited attempts for one session, fail it. 5xx and connection errors are retried as
        :meth:`get_session` retries them. Each id is fetched once, even if listed twice. All ids are checked
        before the first request; after a final error nothing more is sent.

        :param platform: ``android``, ``ios`` or ``web``.
        :param version_key: The app version key.
        :param session_ids: The sessions' ids.
        :param max_concurrency: Requests in flight at most (1 to 64).
        :param skip_missing: Leave out sessions DevRev does not have (404) instead of raising.
        :return: The sessions, in the order of their first appearance in ``session_ids``.
        :raises DevRevNotFoundError: a session does not exist (unless ``skip_missing``).
        :raises DevRevError: the first final failure; queued requests are dropped and workers waiting out a
            pause or a retry give up (requests already on the wire end within their timeout).
        """
        from airflow_provider_devrev.hooks._bulk import fetch_sessions

        return fetch_sessions(
            self, platform, version_key, session_ids, max_concurrency=max_concurrency, skip_missing=skip_missing
        )

    def worker_copy(
        self, *, retry_rate_limited: bool = True, sleep: Callable[[float], Any] | None = None
    ) -> DevRevHook:
        """A copy sharing this hook's connection settings but with its own HTTP session (one per thread)."""
        settings = self.settings
        clone = copy.copy(self)
        clone._http = None
        clone._sleep = sleep or self._sleep
        clone._settings = dataclasses.replace(
            settings, retry=dataclasses.replace(settings.retry, retry_rate_limited=retry_rate_limited)
        )
        return clone

    def test_connection(self) -> tuple[bool, str]:
        """Check the token with one ``GET /dev-users.self``; the message names the user, or says why not."""
        try:
            user = self.call(dev_users_self_request(), retry=False)
        except DevRevError as err:
            return False, f"DevRev connection {self.devrev_conn_id!r} failed: {err}"
        who = user.get("display_name") or user.get("full_name") or user.get("email") or user.get("id")
        problem = template_problem(self.settings.session_url_template)
        if problem:
            return False, f"DevRev connection {self.devrev_conn_id!r} works, but its session_url_template {problem}"
        return True, f"Connected to DevRev at {self.settings.base_url} as {who} ({user.get('id')})"

    # -- transport ------------------------------------------------------------------------------------

    def call(self, request: ApiRequest, *, retry: bool = True, deadline: float | None = None) -> dict[str, Any]:
        """
        Send ``request`` with the retry policy (or once) and return the result object.

        A 401 reads the connection again; if the token or host changed, the request is sent again at once.
        ``deadline`` (Unix time, a sensor's timeout): no retry starts after it; the last error is raised.
        """

        def send(settings: ConnectionSettings) -> dict[str, Any]:
            options: dict[str, Any] = {"sleep": self._sleep, "log": self._retry_log, "deadline": deadline}
            return _sync_transport.call(self.get_conn(), request, settings, retry=retry, **options)

        return self._rotating(self.settings, send)

    def call_streaming(self, request: ApiRequest, write: Callable[[bytes], Any]) -> int:
        """
        Send ``request`` as :meth:`call` does, but hand a 2xx body to ``write`` chunk by chunk as it arrives.

        Retried like :meth:`call` (and re-read after a 401, as :meth:`call` does) until the first chunk has been
        written; after that any failure is final (the bytes written cannot be taken back): a cut body raises
        :class:`~airflow_provider_devrev.exceptions.DevRevUnexpectedResponseError`. Exceptions from ``write``
        pass through unchanged.

        :return: How many bytes of the body were written.
        """

        def send(settings: ConnectionSettings) -> int:
            return _sync_transport.call_streaming(
                self.get_conn(), request, settings, write, sleep=self._sleep, log=self._retry_log
            )

        return self._rotating(self.settings, send)


@functools.cache
def _async_send() -> Callable[..., Awaitable[dict[str, Any]]]:
    # Imported on first async use (aiohttp must not load at DAG-parse time), then kept: an import statement
    # in acall, run at every poll of every trigger, cost as much as the rest of the method.
    from airflow_provider_devrev.hooks._async_transport import acall

    return acall
