"""
Reading a DevRev connection, in either transport, and following a rotated token.

A hook reads its connection once, on first use: a blocking lookup on a worker; on a triggerer's event loop, a
lookup shared by every trigger of the loop (:func:`connection_lookup`). A failed lookup is retried like a 503.
A 401 makes the hook read the connection again, once: if the token or host changed, the hook and its worker
copies adopt them together (:class:`_Credentials`). Both transports, and the hook, come here for all of it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import os
import threading
import weakref
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from airflow_provider_devrev import _secrets
from airflow_provider_devrev._compat import BaseHook, mask_secret
from airflow_provider_devrev._secrets import proxy_secret_forms
from airflow_provider_devrev.connection import ConnectionSettings, HookOptions, settings_from_connection, token_forms
from airflow_provider_devrev.exceptions import DevRevAuthError, DevRevError, DevRevServerError
from airflow_provider_devrev.policy import DEFAULT_MAX_RETRIES, DEFAULT_MAX_RETRY_WAIT, RetryPolicy

if TYPE_CHECKING:
    import requests

T = TypeVar("T")

#: How long one event loop reuses a connection it looked up. Thousands of triggers started together share
#: one lookup instead of making thousands; a changed connection is seen by triggers started a minute later,
#: and by running ones at their next 401 (see :func:`connection_lookup`).
CONNECTION_TTL = 60.0

#: The longest one connection lookup may take (seconds) before it counts as failed and is retried.
CONNECTION_LOOKUP_TIMEOUT = 30.0

#: Numbers the lookups, so a caller can ask for one newer than the lookup its settings came from.
_LOOKUP_NUMBERS = itertools.count(1)
#: The number of the last lookup started (0: none yet); see :func:`lookups_started`.
_last_lookup = 0

_CONNECTIONS: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, dict[str, tuple[float, asyncio.Task[tuple[Any, dict[str, Any]]], int]]
] = weakref.WeakKeyDictionary()


#: Settings validated from one async connection lookup, by (lookup number, hook options). Thousands of
#: triggers started from the same lookup then validate the connection once, not once each (validation
#: reads the proxy environment and parses every extra). A lookup number is never reused, so a changed
#: connection, found by a newer lookup, is validated afresh.
_SETTINGS_BY_LOOKUP: dict[tuple[int, HookOptions], ConnectionSettings] = {}
_SETTINGS_BY_LOOKUP_SIZE = 256


def clear_caches() -> None:
    """
    Forget every connection looked up and every settings object validated from one, on every event loop.

    For tests that start a new DevRev (a simulator on another port) under the same connection id while an
    event loop lives on: the next lookup reads the connection afresh. Lookups in flight still answer the
    callers already waiting on them. The lookup numbers go on counting: a number is never reused, or
    :data:`_SETTINGS_BY_LOOKUP` and a re-read after a 401 could take an old lookup for a new one.
    """
    _CONNECTIONS.clear()
    _SETTINGS_BY_LOOKUP.clear()


class ConnectionReader(BaseHook):
    """
    The half of :class:`~airflow_provider_devrev.hooks.devrev.DevRevHook` that reads its connection and follows
    a rotated token; the hook builds on it, so these stay methods of the hook (no call in between).
    """

    # Set by DevRevHook.__init__.
    devrev_conn_id: str
    options: HookOptions
    _sleep: Callable[[float], Any]
    _async_sleep: Callable[[float], Awaitable[Any]] | None
    _settings: ConnectionSettings | None
    _credentials: _Credentials | None
    _lookup_number: int
    _http: requests.Session | None

    def _read_settings(self) -> ConnectionSettings:
        policy, what = self._lookup_policy(), f"lookup of connection {self.devrev_conn_id!r}"
        for attempt in range(1, policy.max_retries + 2):
            try:
                conn = self.get_connection(self.devrev_conn_id)
                # Every form the token could take in a text, before validation can refuse it and say why.
                _mask(token_forms(conn.password))
                extra = conn.extra_dejson
                # The proxy's password too, read or not, parseable or not (see proxy_secret_forms).
                _mask(proxy_secret_forms(extra, os.environ))
                break
            except Exception as err:
                failure = _lookup_failure(self.devrev_conn_id, err)
            if attempt > policy.max_retries or not policy.should_retry(failure):
                raise failure from None
            wait = policy.wait_seconds(failure, attempt)
            policy.log_retry(self.log, what, failure, attempt, wait)
            self._sleep(wait)
        return self._settings_from(conn, extra)

    async def _aread_settings(self, *, newer_than: int = 0) -> ConnectionSettings:
        attempt = 0
        while True:
            attempt += 1
            try:
                number, conn, extra = await connection_lookup(self.devrev_conn_id, type(self), newer_than=newer_than)
                break
            except Exception as err:
                failure = _lookup_failure(self.devrev_conn_id, err)
            # Built on a failure only: every trigger's hook comes here once, and nearly every lookup is cached.
            policy = self._lookup_policy()
            if attempt > policy.max_retries or not policy.should_retry(failure):
                raise failure from None
            wait = policy.wait_seconds(failure, attempt)
            policy.log_retry(self.log, f"lookup of connection {self.devrev_conn_id!r}", failure, attempt, wait)
            await (self._async_sleep or asyncio.sleep)(wait)
        self._lookup_number = number
        key = (number, self.options)
        settings = _SETTINGS_BY_LOOKUP.get(key)
        if settings is None:
            # The lookup registered the token's and the proxy's secrets (_lookup_and_mask) before this can fail.
            settings = self._validated(conn, extra)
            if len(_SETTINGS_BY_LOOKUP) >= _SETTINGS_BY_LOOKUP_SIZE:
                _SETTINGS_BY_LOOKUP.clear()
            _SETTINGS_BY_LOOKUP[key] = settings
        self._warn_if_unverified(settings)
        return settings

    @property
    def settings_read(self) -> ConnectionSettings | None:
        """The validated connection if this hook has read it already, else ``None``: never a lookup."""
        return self._current() if self._settings is not None else None

    def _lookup_policy(self) -> RetryPolicy:
        # The connection's own retry extras are what is being looked up: the hook's arguments, else defaults.
        retries, longest = self.options.max_retries, self.options.max_retry_wait
        return RetryPolicy(
            max_retries=DEFAULT_MAX_RETRIES if retries is None else retries,
            max_retry_wait=DEFAULT_MAX_RETRY_WAIT if longest is None else longest,
        )

    def _settings_from(self, conn: Any, extra: Mapping[str, Any]) -> ConnectionSettings:
        settings = self._validated(conn, extra)
        self._warn_if_unverified(settings)
        return settings

    def _validated(self, conn: Any, extra: Mapping[str, Any]) -> ConnectionSettings:
        return settings_from_connection(
            self.devrev_conn_id,
            host=conn.host,
            port=conn.port,
            password=conn.password,
            extra=extra,
            options=self.options,
        )

    def _warn_if_unverified(self, settings: ConnectionSettings) -> None:
        if not settings.network.verify:
            self.log.warning(
                "Connection %r has verify_tls=false: DevRev's TLS certificate is NOT verified, so anyone on "
                "the network path can read the token and the sessions. Use ca_bundle instead if you can.",
                self.devrev_conn_id,
            )

    # -- rotation -------------------------------------------------------------------------------------
    # The token and base URL are what a rotation changes; other settings (timeouts, retries, scope) are
    # read once per hook. They are held in a _Credentials that the hook shares with its worker copies, so
    # a rotation one of them finds is adopted by all without more lookups.

    def _use(self, settings: ConnectionSettings) -> None:
        self._settings = settings
        self._credentials = _Credentials(settings)

    def _current(self) -> ConnectionSettings:
        """The settings, with the token and base URL a worker copy may have found since (no lookup)."""
        settings = self._settings
        assert settings is not None
        assert self._credentials is not None
        token, base_url = self._credentials.current
        if (settings.token, settings.base_url) != (token, base_url):
            settings = self._settings = dataclasses.replace(settings, token=token, base_url=base_url)
            if self._http is not None:
                self._http.headers.update(settings.headers())
        return settings

    def _rotating(self, settings: ConnectionSettings, send: Callable[[ConnectionSettings], T]) -> T:
        """``send(settings)``; after a 401, the connection is read again and, if it changed, sent once more."""
        try:
            return send(settings)
        except DevRevAuthError as err:
            unauthorized = err
        # Outside the except clause: a failure from here on is not chained to the 401.
        if not self._rotated(settings):
            raise unauthorized
        return send(self._current())

    def _rotated(self, used: ConnectionSettings) -> bool:
        """After a 401 sent with ``used``: whether the connection now holds another token or host (read
        again, once, unless another copy of this hook already has), adopting them if so."""
        credentials = self._credentials
        assert credentials is not None
        with credentials.lock:
            unchanged = credentials.current == (used.token, used.base_url)
            if unchanged and not self._adopt_if_changed(credentials, used, self._read_settings()):
                return False
        self._current()
        return True

    async def _arotated(self, used: ConnectionSettings, *, sent_after: int = 0) -> bool:
        """
        :meth:`_rotated` for the async transport: the lookup bypasses the event loop's cache.

        :param sent_after: :func:`lookups_started` before the refused request was sent: only a lookup started
            after it answers (triggers meeting the same 401 still share it).
        """
        credentials = self._credentials
        assert credentials is not None
        if credentials.current == (used.token, used.base_url):
            fresh = await self._aread_settings(newer_than=max(self._lookup_number, sent_after))
            if not self._adopt_if_changed(credentials, used, fresh):
                return False
        self._current()
        return True

    def _adopt_if_changed(self, credentials: _Credentials, used: ConnectionSettings, fresh: ConnectionSettings) -> bool:
        changed = [
            what
            for what, old, new in (("token", used.token, fresh.token), ("host", used.base_url, fresh.base_url))
            if old != new
        ]
        if not changed:
            return False
        credentials.current = (fresh.token, fresh.base_url)
        self.log.info("DevRev connection %s changed; using the new %s", self.devrev_conn_id, " and ".join(changed))
        return True


class _Credentials:
    """The token and base URL in use by a hook and its worker copies; ``lock`` serializes re-reads."""

    def __init__(self, settings: ConnectionSettings) -> None:
        self.lock = threading.Lock()
        # One tuple, replaced whole, so a reader never sees a new token with the old host.
        self.current: tuple[str, str] = (settings.token, settings.base_url)

    def __repr__(self) -> str:
        return "_Credentials(...)"


def _mask(forms: Iterable[str]) -> None:
    """Register secret forms with Airflow's masker (logs) and the provider's own (error texts, events)."""
    forms = list(forms)
    _secrets.remember(forms)
    for form in forms:
        mask_secret(form)


async def _amask(forms: Iterable[str]) -> None:
    """:func:`_mask` on an event loop (see :func:`~airflow_provider_devrev._compat.amask_secret`)."""
    from airflow_provider_devrev._compat import amask_secret

    forms = list(forms)
    _secrets.remember(forms)
    for form in forms:
        await amask_secret(form)


def _lookup_failure(conn_id: str, error: Exception) -> Exception:
    """
    What a failed connection lookup raises: a missing connection as it is (final), a lookup that failed
    (a secrets backend or API server hiccup) as a transient :class:`DevRevServerError`, retried like a 503.

    The lookup's own message is not quoted, since a secrets backend may put anything in it: only its class
    is named.
    """
    # By name: Airflow 3.0 has two classes of that name (airflow.exceptions and the Task SDK's).
    missing = any(cls.__name__ == "AirflowNotFoundException" for cls in type(error).__mro__)
    if missing or isinstance(error, DevRevError):
        return error
    return DevRevServerError(
        f"looking up connection {conn_id!r} failed ({type(error).__name__}); the secrets backend or the API "
        "server may be restarting",
        error_type="connection_lookup_failed",
    )


async def connection_fields(conn_id: str, hook_class: type[Any]) -> tuple[Any, dict[str, Any]]:
    """
    An Airflow connection and its extras, looked up asynchronously (never a blocking call in the loop),
    at most once per :data:`CONNECTION_TTL` per event loop; concurrent callers share the lookup in flight.
    """
    _, conn, extra = await connection_lookup(conn_id, hook_class)
    return conn, extra


async def connection_lookup(
    conn_id: str, hook_class: type[Any], *, newer_than: int = 0
) -> tuple[int, Any, dict[str, Any]]:
    """
    :func:`connection_fields`, with the number of the lookup that answered.

    :param newer_than: Only a lookup numbered above this answers: after a 401, a trigger passes the
        number its settings came from, so it reads the connection afresh, bypassing this cache. Thousands
        of triggers meeting the same 401 still share one new lookup: the first starts it, the others find
        it newer than theirs.
    """
    loop = asyncio.get_running_loop()
    cache = _CONNECTIONS.get(loop)
    if cache is None:
        cache = _CONNECTIONS[loop] = {}
    entry = cache.get(conn_id)
    if entry is None or entry[0] < loop.time() or entry[2] <= newer_than or _failed(entry[1]):
        task = loop.create_task(_lookup(conn_id, hook_class))
        global _last_lookup
        _last_lookup = next(_LOOKUP_NUMBERS)
        entry = cache[conn_id] = (loop.time() + CONNECTION_TTL, task, _last_lookup)
    lookup = entry[1]
    if lookup.done():  # nearly always: thousands of triggers share one lookup a minute
        conn, extra = lookup.result()
    else:
        # Shielded: one caller being cancelled (its trigger removed) must not cancel the others' lookup.
        conn, extra = await asyncio.shield(lookup)
    return entry[2], conn, extra


def lookups_started() -> int:
    """
    The number of the last connection lookup started. A trigger reads it before it sends a request: after a
    401, only a lookup started later may answer its re-read. A lookup newer than the trigger's settings but
    started before its request (a cache refresh in flight while the connection was being rotated) may still
    hold the old token.
    """
    return _last_lookup


def _failed(lookup: asyncio.Task[Any]) -> bool:
    # A failed or cancelled lookup is not cached: the next caller tries again.
    return lookup.done() and (lookup.cancelled() or lookup.exception() is not None)


async def _lookup(conn_id: str, hook_class: type[Any]) -> tuple[Any, dict[str, Any]]:
    # A lookup goes to the supervisor, the API server or a secrets backend: none of them may hold every
    # DevRev trigger of the loop forever. A timeout fails this shared lookup like any other failure (the
    # hook retries it as a 503), and a failed lookup is not cached: the next caller starts anew.
    return await asyncio.wait_for(_lookup_and_mask(conn_id, hook_class), CONNECTION_LOOKUP_TIMEOUT)


async def _lookup_and_mask(conn_id: str, hook_class: type[Any]) -> tuple[Any, dict[str, Any]]:
    from airflow.providers.common.compat.connection import get_async_connection, get_async_extra_dejson

    conn = await get_async_connection(conn_id, hook=hook_class)
    await _amask(token_forms(conn.password))
    extra = await get_async_extra_dejson(conn)
    # Before the hook validates these settings (and may refuse a proxy URL): as the sync read does.
    await _amask(proxy_secret_forms(extra, os.environ))
    return conn, extra
