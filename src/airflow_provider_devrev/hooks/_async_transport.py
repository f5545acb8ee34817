"""
The async transport: one aiohttp connection pool per event loop, shared by every DevRev call on that loop.

A triggerer runs all its triggers on one loop and may hold thousands of DevRev waits; a session (and its
TCP connections) per trigger or per poll would cost memory, file descriptors and TLS handshakes for nothing.
The pool is reference-counted: it lives while any trigger or call holds it and is closed when the last one
lets go, so a short-lived loop (``dag.test()``, ``asyncio.run``) leaves no unclosed session behind.

Only the triggerer imports this module, so aiohttp never loads at DAG-parse time.
"""

from __future__ import annotations

import asyncio
import functools
import ssl
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
from tenacity import AsyncRetrying
from yarl import URL

from airflow_provider_devrev import metrics
from airflow_provider_devrev.connection import ConnectionSettings
from airflow_provider_devrev.contract import ApiRequest, no_response_error, parse_response
from airflow_provider_devrev.exceptions import DevRevError
from airflow_provider_devrev.network import (
    NetworkSettings,
    proxy_failure,
    tls_error,
)

#: Open TCP connections per event loop. Polls beyond it queue for a free connection instead of opening
#: more: DevRev's rate limit, not connection count, is what bounds useful concurrency.
POOL_SIZE = 100


class _Pool:
    def __init__(self) -> None:
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=POOL_SIZE, ttl_dns_cache=300),
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


#: How long one event loop reuses a connection it looked up. Thousands of triggers started together share
#: one lookup instead of making thousands; a changed connection is seen by triggers started a minute later
#: (a running trigger keeps the connection it started with in any case).
CONNECTION_TTL = 60.0

_CONNECTIONS: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, dict[str, tuple[float, asyncio.Task[tuple[Any, dict[str, Any]]]]]
] = weakref.WeakKeyDictionary()


async def connection_fields(conn_id: str, hook_class: type[Any]) -> tuple[Any, dict[str, Any]]:
    """
    An Airflow connection and its extras, looked up asynchronously (never a blocking call in the loop),
    at most once per :data:`CONNECTION_TTL` per event loop; concurrent callers share the lookup in flight.
    """
    loop = asyncio.get_running_loop()
    cache = _CONNECTIONS.setdefault(loop, {})
    entry = cache.get(conn_id)
    if entry is None or entry[0] < loop.time() or _failed(entry[1]):
        entry = cache[conn_id] = (loop.time() + CONNECTION_TTL, loop.create_task(_lookup(conn_id, hook_class)))
    # Shielded: one caller being cancelled (its trigger removed) must not cancel the others' lookup.
    return await asyncio.shield(entry[1])


def _failed(lookup: asyncio.Task[Any]) -> bool:
    # A failed or cancelled lookup is not cached: the next caller tries again.
    return lookup.done() and (lookup.cancelled() or lookup.exception() is not None)


async def _lookup(conn_id: str, hook_class: type[Any]) -> tuple[Any, dict[str, Any]]:
    from airflow.providers.common.compat.connection import get_async_connection, get_async_extra_dejson

    conn = await get_async_connection(conn_id, hook=hook_class)
    return conn, await get_async_extra_dejson(conn)


@asynccontextmanager
async def shared_session() -> AsyncIterator[aiohttp.ClientSession]:
    """Hold this loop's shared ``aiohttp.ClientSession`` for the duration of the block."""
    loop = asyncio.get_running_loop()
    pool = _POOLS.get(loop)
    if pool is None or pool.session.closed:
        pool = _POOLS[loop] = _Pool()
    pool.users += 1
    try:
        yield pool.session
    finally:
        pool.users -= 1
        if pool.users == 0 and _POOLS.get(loop) is pool:
            del _POOLS[loop]
            await pool.session.close()


async def acall(
    request: ApiRequest,
    settings: ConnectionSettings,
    *,
    sleep: Callable[[float], Awaitable[Any]] | None,
    log: Any,
) -> dict[str, Any]:
    """Send ``request`` with the connection's retry policy and return the result object."""
    sleep = sleep or asyncio.sleep
    async with shared_session() as session:
        try:
            return await _send_once(session, request, settings)
        except DevRevError as err:
            wait = settings.retry.first_retry_wait(err, log=log, what=request.describe())
            if wait is None:
                raise
            await sleep(wait)
        kwargs = settings.retry.tenacity_kwargs(sleep=sleep, log=log, what=request.describe(), attempts_made=1)
        async for attempt in AsyncRetrying(**kwargs):
            with attempt:
                return await _send_once(session, request, settings)
    raise AssertionError("unreachable: tenacity either returns, or re-raises the last error")


async def _send_once(
    session: aiohttp.ClientSession, request: ApiRequest, settings: ConnectionSettings
) -> dict[str, Any]:
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=settings.connect_timeout, sock_read=settings.read_timeout)
    final: DevRevError | None = None
    try:
        async with session.request(
            request.method,
            # Encoded once by the contract, exactly as the sync transport sends it.
            URL(request.url(settings.base_url), encoded=True),
            json=request.body,
            headers=settings.headers(),
            timeout=timeout,
            allow_redirects=False,
            **route(settings.network),
        ) as response:
            content = await response.read()
            status, headers = response.status, response.headers
    except aiohttp.ConnectionTimeoutError as err:
        raise no_response_error(
            request, settings.base_url, timeout=settings.connect_timeout, timeout_kind="connect"
        ) from err
    except (asyncio.TimeoutError, aiohttp.ServerTimeoutError) as err:
        raise no_response_error(request, settings.base_url, timeout=settings.read_timeout) from err
    except aiohttp.ClientConnectorCertificateError as err:
        reason = getattr(err.certificate_error, "verify_message", None) or str(err.certificate_error)
        final = tls_error(request.describe(), settings.base_url, settings.network, reason)
    except aiohttp.ClientHttpProxyError as err:
        final = proxy_failure(request.describe(), settings.base_url, settings.network.proxy, err.status)
    except aiohttp.ClientProxyConnectionError:
        final = proxy_failure(request.describe(), settings.base_url, settings.network.proxy, None)
    except aiohttp.ClientError as err:
        raise no_response_error(request, settings.base_url) from err
    if final is not None:
        # Raised outside the handler, so that it carries no chain: aiohttp's proxy errors hold the
        # CONNECT request, Proxy-Authorization header included.
        raise final
    metrics.request_answered(request.path, status)
    try:
        return parse_response(request, status, headers, content)
    except DevRevError as err:
        raise settings.retry.check_wait_acceptable(err) from None


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
    elif network.ca_bundle is not None:
        kwargs["ssl"] = ssl.create_default_context(cafile=network.ca_bundle)
    return kwargs
