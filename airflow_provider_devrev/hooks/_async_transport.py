"""
The async transport: one aiohttp connection pool per event loop, shared by every DevRev call on that loop.

A triggerer runs all its triggers on one loop and may hold thousands of DevRev waits; a session (and its
TCP connections) per trigger or per poll would cost memory, file descriptors and TLS handshakes for nothing.
The pool is reference-counted: it lives while any trigger or call holds it and is closed when the last one
lets go, so a short-lived loop (``dag.test()``, ``asyncio.run``) leaves no unclosed session behind.

Shaped like the sync transport (``_sync_transport.py``) step for step, so the two read side by side: the
session, sending with the retry policy (:func:`acall`), one attempt (``_send_once``), what a failure of the
library means (``_request_failure``), and the options of every request (``_request_options``).

Only the triggerer imports this module, so aiohttp never loads at DAG-parse time.
"""

from __future__ import annotations

import asyncio
import functools
import ssl
import weakref
from collections.abc import Awaitable, Callable
from typing import Any, cast

import aiohttp
from tenacity import AsyncRetrying
from yarl import URL

from airflow_provider_devrev import metrics
from airflow_provider_devrev._failures import (
    count_unanswered,
    network_failure,
    proxy_unreachable_reason,
    timeout_failure,
)
from airflow_provider_devrev.connection import ConnectionSettings
from airflow_provider_devrev.contract import (
    ApiRequest,
    parse_response,
    unsendable_request_error,
)
from airflow_provider_devrev.exceptions import DevRevError
from airflow_provider_devrev.hooks._rate_gate import RateGate, gate_for, pause_id
from airflow_provider_devrev.network import (
    NetworkSettings,
    proxy_failure,
    tls_error,
)
from airflow_provider_devrev.policy import is_transient

#: Open TCP connections per event loop and destination (host, port, TLS and proxy, as aiohttp keys them).
#: Polls beyond it queue for a free connection instead of opening more: DevRev's rate limit, not connection
#: count, is what bounds useful concurrency.
POOL_SIZE = 100


class _Pool:
    def __init__(self) -> None:
        self.session = aiohttp.ClientSession(
            # Per destination, with no limit over all: every trigger of the loop shares this pool, and with one
            # overall limit, requests stuck on one host (a proxy that never answers, a server that never sends
            # its headers) would hold every slot and stall the other connections' triggers too. A request
            # queued behind its own host's stuck ones gives up after its connect timeout, which covers the wait
            # for a slot (see _request_options).
            connector=aiohttp.TCPConnector(limit=0, limit_per_host=POOL_SIZE, ttl_dns_cache=300),
            # Timeouts are set per request from the connection's settings.
            timeout=aiohttp.ClientTimeout(total=None),
            raise_for_status=False,
        )
        # aiohttp silently re-sends an idempotent request, at once, when a reused connection drops. Our
        # policy owns every retry (counted, logged, after a wait), so turn that off; it is a private flag,
        # hence the guard, and with an aiohttp without it we merely keep its one extra immediate try.
        if hasattr(self.session, "_retry_connection"):
            self.session._retry_connection = False
        self.users = 0


_POOLS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Pool] = weakref.WeakKeyDictionary()


def clear_caches() -> None:
    """
    Forget the routes built for each network setting (:func:`route`): a CA file rewritten in place at the same
    path is read again. The per-loop pools are left alone: a pool outlives a test only while a call or trigger
    of that test still holds it (the last to let go closes it), and closing it under them would fail them.
    """
    route.cache_clear()


def shared_session() -> _SharedSession:
    """Hold this loop's shared ``aiohttp.ClientSession`` for the duration of the block (``async with``)."""
    return _SharedSession()


class _SharedSession:
    # A plain class rather than an @asynccontextmanager generator: every poll of every trigger enters it,
    # and the generator's frames and wrapper were several percent of a poll's CPU.
    __slots__ = ("loop", "pool")

    async def __aenter__(self) -> aiohttp.ClientSession:
        self.loop = loop = asyncio.get_running_loop()
        pool = _POOLS.get(loop)
        if pool is None or pool.session.closed:
            pool = _POOLS[loop] = _Pool()
        pool.users += 1
        self.pool = pool
        return pool.session

    async def __aexit__(self, *exc_info: object) -> None:
        pool, loop = self.pool, self.loop
        pool.users -= 1
        if pool.users == 0 and _POOLS.get(loop) is pool:
            del _POOLS[loop]
            await pool.session.close()


async def acall(
    request: ApiRequest,
    settings: ConnectionSettings,
    *,
    sleep: Callable[[float], Awaitable[Any]] | None,
    log: Callable[[], Any],
    deadline: float | None = None,
) -> dict[str, Any]:
    """
    Send ``request`` with the connection's retry policy and return the result object.

    :param log: Returns where retries are logged; called only when there is one to log (a hook builds its
        logger on first use, and a trigger's hook lives for one wait).
    :param deadline: Unix time after which no retry starts (a sensor's timeout).
    """
    sleep = sleep or asyncio.sleep
    gate = gate_for(settings)
    async with shared_session() as session:
        try:
            return await _send_once(session, request, settings, gate, sleep, deadline, -1)
        except DevRevError as err:
            if not is_transient(err):
                raise  # final (a 404 at every poll of a wait): nothing for the retry policy to weigh
            # A retry waits at least the Retry-After that paused the gate: it need not wait that pause again.
            waited = pause_id(gate, err, -1)
            wait = settings.retry.first_retry_wait(err, log=log(), what=_what(request, settings), deadline=deadline)
            if wait is None:
                raise
            await sleep(wait)
        kwargs = settings.retry.tenacity_kwargs(
            sleep=sleep, log=log(), what=_what(request, settings), attempts_made=1, deadline=deadline
        )
        async for attempt in AsyncRetrying(**kwargs):
            with attempt:
                return await _send_once(session, request, settings, gate, sleep, deadline, waited)
            outcome = attempt.retry_state.outcome
            waited = pause_id(gate, outcome.exception() if outcome else None, waited)
    raise AssertionError("unreachable: tenacity either returns, or re-raises the last error")


async def _send_once(
    session: aiohttp.ClientSession,
    request: ApiRequest,
    settings: ConnectionSettings,
    gate: RateGate | None,
    sleep: Callable[[float], Awaitable[Any]],
    deadline: float | None,
    waited: int,
) -> dict[str, Any]:
    if gate is not None:
        # Asked before every attempt, retries included; a wait, if any, is waited outside this hot path.
        wait, pause = gate.admit(waited, settings.retry.max_retry_wait, deadline)
        if wait:
            await _admitted(gate, settings, sleep, deadline, wait, pause)
    # One function, not a second coroutine for the exchange: every poll of every trigger runs it.
    try:
        failure: DevRevError
        cause: BaseException | None = None
        reading_body = False
        try:
            async with session.request(
                request.method,
                # Encoded once by the contract, exactly as the sync transport sends it.
                URL(request.url(settings.base_url), encoded=True),
                json=request.body,
                **_request_options(settings),
            ) as response:
                status, headers = response.status, response.headers
                # Counted as the status arrives, as the sync transport does: a body cut short still had this answer.
                metrics.request_answered(request.path, status)
                reading_body = True
                content = await response.read()
        except Exception as err:
            reported = _request_failure(request, settings, err, reading_body=reading_body)
            if reported is None:
                raise
            failure, cause = reported
            del reported  # else this frame would hold the error too (see the finally below)
            if not reading_body:
                count_unanswered(request, failure)
        else:
            try:
                result = parse_response(request, status, headers, content)
            except DevRevError as err:
                if gate is not None:
                    gate.observe(status, headers, err.retry_after)
                failure = settings.retry.check_wait_acceptable(err)
            else:
                if gate is not None:
                    gate.observe(status, headers, None)
                return result
        # Raised here, outside the except clauses, so that no error is chained to what the library raised
        # (implicitly, as __context__) unless it is a network failure, whose text holds no header.
        try:
            raise failure from cause
        finally:
            # The traceback holds this frame, and the frame would hold the error: a reference cycle per failed
            # poll (a 404 at every poll of every trigger), with the response in it, left to the cyclic garbage
            # collector, whose passes over a triggerer's heap cost more than the poll itself.
            del failure, cause
    finally:
        if gate is not None:
            gate.release()


async def _admitted(
    gate: RateGate,
    settings: ConnectionSettings,
    sleep: Callable[[float], Awaitable[Any]],
    deadline: float | None,
    wait: float,
    pause: int,
) -> None:
    """Wait out the gate's pauses with the call's own sleep, each once, until it admits the attempt."""
    while wait:
        await sleep(wait)
        wait, pause = gate.admit(pause, settings.retry.max_retry_wait, deadline)


def _what(request: ApiRequest, settings: ConnectionSettings) -> str:
    """The request as a retry's log line names it: ``METHOD /path to https://host``."""
    return f"{request.describe()} to {settings.base_url}"


def _request_failure(
    request: ApiRequest, settings: ConnectionSettings, error: BaseException, *, reading_body: bool = False
) -> tuple[DevRevError, BaseException | None] | None:
    """
    How an exception from aiohttp while sending ``request`` is reported: the typed error, and the cause it may
    be chained to, or ``None`` for an exception that is not the library's (it propagates as it is).

    A timeout is named for the hop where the request stalled: connecting (aiohttp's ``connect`` timeout, which
    also covers a free pooled connection, a proxy's answer to ``CONNECT`` and the TLS handshake), waiting for
    the answer or reading the body (``sock_read``; ``reading_body`` says which), or the whole request
    (``total``, the ``request_timeout`` extra, raised as a bare ``TimeoutError``).

    Only a network failure keeps its cause: its text holds no header. A certificate that did not verify or a
    proxy that failed is final and unchained (aiohttp's proxy and TLS errors hold the CONNECT request,
    Proxy-Authorization included); a request the library refuses to send (an invalid URL, or a header with a
    control character, refused with a bare ValueError quoting the header) is final and unchained too.
    """
    if isinstance(error, aiohttp.ConnectionTimeoutError):
        return timeout_failure(request, settings, "connect"), error
    if isinstance(error, aiohttp.ServerTimeoutError):
        return timeout_failure(request, settings, "body" if reading_body else "answer"), error
    if isinstance(error, TimeoutError):
        return timeout_failure(request, settings, "request"), error
    if isinstance(error, aiohttp.ClientConnectorCertificateError):
        reason = getattr(error.certificate_error, "verify_message", None) or str(error.certificate_error)
        return tls_error(request.describe(), settings.base_url, settings.network, reason), None
    if isinstance(error, aiohttp.ClientHttpProxyError):
        return proxy_failure(request.describe(), settings.base_url, settings.network.proxy, error.status), None
    if isinstance(error, aiohttp.ClientProxyConnectionError):
        proxy = settings.network.proxy
        reason = proxy_unreachable_reason(error, proxy) if proxy is not None else None
        return proxy_failure(request.describe(), settings.base_url, proxy, None, reason), None
    if isinstance(error, aiohttp.ClientResponseError):
        # An answer that is not valid HTTP (a bad status line, a header too long, a bad chunk): unchained,
        # since the error's request_info holds the request's headers, the token's among them.
        return network_failure(request.describe(), settings.base_url, error, settings.network.proxy), None
    if isinstance(error, aiohttp.InvalidURL):  # a ClientError, but no network failure
        return unsendable_request_error(request, settings.base_url, error), None
    if isinstance(error, aiohttp.ClientError):
        return network_failure(request.describe(), settings.base_url, error, settings.network.proxy), error
    if isinstance(error, (ValueError, TypeError, LookupError)):
        return unsendable_request_error(request, settings.base_url, error), None
    return None


def _request_options(settings: ConnectionSettings) -> dict[str, Any]:
    """
    The arguments of every request made with ``settings``: headers, timeouts, no redirects, the route.

    Worked out once per settings object and kept on it, as the contract keeps a request's URL: a trigger
    sends them at every poll. A rotated token or host makes a new settings object, so new options.
    """
    options = settings.__dict__.get("_aiohttp_options")
    if options is None:
        options = {
            "headers": settings.headers(),
            # connect, not sock_connect alone: it bounds everything before the request is sent (the wait for
            # a pooled connection, the TCP and TLS handshakes, a proxy's answer to CONNECT), where sock_connect
            # bounds the TCP handshake only and a proxy that never answered held the request for ever. total
            # bounds the whole request, body included: sock_read alone never ends a body that trickles in.
            "timeout": aiohttp.ClientTimeout(
                total=settings.request_timeout, connect=settings.connect_timeout, sock_read=settings.read_timeout
            ),
            "allow_redirects": False,
            **route(settings.network),
        }
        object.__setattr__(settings, "_aiohttp_options", options)
    return cast(dict[str, Any], options)


@functools.lru_cache(maxsize=64)
def route(network: NetworkSettings) -> dict[str, Any]:
    """
    The per-request arguments that take a call through its proxy with its CAs.

    Per request, not per pool: every DevRev trigger on a loop shares one pool whatever its connection, and
    aiohttp keys pooled connections by proxy and TLS context, so connections of different settings never
    mix. Cached, so each distinct setting builds its ``SSLContext`` once (and its pooled connections are
    reused); the default setting adds nothing, so the common case runs exactly as before.
    """
    kwargs: dict[str, Any] = {}
    if network.proxy is not None:
        kwargs["proxy"] = URL(network.proxy.url)
        authorization = network.proxy.authorization()
        if authorization is not None:
            # A header rather than aiohttp.BasicAuth, which aiohttp 3.14 deprecates.
            kwargs["proxy_headers"] = {"Proxy-Authorization": authorization}
    if not network.verify:
        kwargs["ssl"] = False
    elif network.ca_file is not None or network.ca_dir is not None:
        # Only these CAs, not the defaults as well (create_default_context loads those only without either),
        # the same as requests trusts; a directory is looked up by hashed names (capath).
        kwargs["ssl"] = ssl.create_default_context(cafile=network.ca_file, capath=network.ca_dir)
    return kwargs
