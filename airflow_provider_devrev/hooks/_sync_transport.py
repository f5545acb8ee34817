"""
The sync transport: ``requests``, one keep-alive session per hook (one per worker thread in a bulk fetch).

Shaped like the async transport (``_async_transport.py``) step for step, so the two read side by side: the
session, sending with the retry policy (:func:`call`), one attempt (``_send_once``; ``_stream_once`` streams a
body, which only this transport does), what a failure of the library means (``_request_failure``), and the
options of every request (``_request_options``).

Every request runs under a :class:`~airflow_provider_devrev.hooks._request_watch.RequestWatch`, which cuts it
at its deadline (the ``request_timeout`` extra): ``requests`` has no deadline of its own, and headers or a body
trickling in a byte a second never trip its per-read timeout. aiohttp's ``total`` timeout does the same in the
async transport. Every body is read here, a read at a time.

``requests`` is imported on first use: the triggerer imports the hook, and so this module, but never sends
with ``requests``.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

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
    error_from_response,
    parse_response,
    unsendable_request_error,
)
from airflow_provider_devrev.exceptions import DevRevError, DevRevUnexpectedResponseError
from airflow_provider_devrev.hooks._rate_gate import gate_for, observe, pause_id, send_gated
from airflow_provider_devrev.hooks._request_watch import RequestWatch, adapter, deadline_error
from airflow_provider_devrev.network import (
    exception_chain,
    proxy_failure,
    tls_error,
    tunnel_status,
)

if TYPE_CHECKING:
    import requests

#: Bytes read from the network at a time when a body is streamed to storage.
STREAM_CHUNK_BYTES = 1 << 16
#: The most of an error answer read while streaming: DevRev's error bodies are small, a proxy's page too.
MAX_ERROR_BODY_BYTES = 1 << 20


def new_session(settings: ConnectionSettings) -> requests.Session:
    """A keep-alive ``requests.Session`` with the connection's headers, route and trust."""
    import requests

    http = requests.Session()
    http.headers.update(settings.headers())
    # The route and trust were decided once, in network.py; requests must not redo it from the
    # environment (the async transport could not follow it there).
    http.trust_env = False
    http.proxies = settings.network.requests_proxies()
    http.verify = settings.network.requests_verify()
    network = settings.network
    watched = adapter(network.ca_file, network.ca_dir) if network.combined_trust else adapter()
    http.mount("https://", watched)
    http.mount("http://", watched)
    return http


def call(
    http: requests.Session,
    request: ApiRequest,
    settings: ConnectionSettings,
    *,
    retry: bool,
    sleep: Callable[[float], Any],
    log: Callable[[], Any],
    deadline: float | None = None,
) -> dict[str, Any]:
    """
    Send ``request`` on ``http`` with the connection's retry policy (or once, without ``retry``) and return the
    result object.

    :param log: Returns where retries are logged; called only when there is one to log.
    :param deadline: Unix time after which no retry starts (a sensor's timeout).
    """

    def send() -> dict[str, Any]:
        return _send_once(http, request, settings)

    result: dict[str, Any] = _with_policy(send, request, settings, retry=retry, sleep=sleep, log=log, deadline=deadline)
    return result


def call_streaming(
    http: requests.Session,
    request: ApiRequest,
    settings: ConnectionSettings,
    write: Callable[[bytes], Any],
    *,
    sleep: Callable[[float], Any],
    log: Callable[[], Any],
) -> int:
    """
    :func:`call`, handing a 2xx body to ``write`` chunk by chunk as it arrives: retried until the first chunk
    has been written, final after that (see ``_stream_once``).

    :return: How many bytes of the body were written.
    """

    def send() -> int:
        return _stream_once(http, request, settings, write)

    written: int = _with_policy(send, request, settings, retry=True, sleep=sleep, log=log)
    return written


def _with_policy(
    send: Callable[[], Any],
    request: ApiRequest,
    settings: ConnectionSettings,
    *,
    retry: bool,
    sleep: Callable[[float], Any],
    log: Callable[[], Any],
    deadline: float | None = None,
) -> Any:
    what = f"{request.describe()} to {settings.base_url}"
    gate = gate_for(settings)
    waited = -1

    def attempt() -> Any:
        nonlocal waited
        try:
            return send_gated(gate, send, waited, settings.retry.max_retry_wait, deadline, sleep)
        except DevRevError as err:
            # A retry waits at least the Retry-After that paused the gate: it need not wait that pause again.
            waited = pause_id(gate, err, waited)
            raise

    try:
        return attempt()
    except DevRevError as err:
        wait = settings.retry.first_retry_wait(err, log=log(), what=what, deadline=deadline) if retry else None
        if wait is None:
            raise
        sleep(wait)
    from tenacity import Retrying

    kwargs = settings.retry.tenacity_kwargs(sleep=sleep, log=log(), what=what, attempts_made=1, deadline=deadline)
    return Retrying(**kwargs)(attempt)


def _send_once(http: requests.Session, request: ApiRequest, settings: ConnectionSettings) -> dict[str, Any]:
    failure: DevRevError
    cause: BaseException | None = None
    reading_body = False
    watch = RequestWatch(time.monotonic() + settings.request_timeout, settings.connect_timeout)
    try:
        with watch, watch.answered(_request(http, request, settings)) as response:
            status, headers = response.status_code, response.headers
            # Counted as the status arrives, as a streamed body's is: a body cut short still had this answer.
            metrics.request_answered(request.path, status)
            reading_body = True
            content = b"".join(_body(response, watch))
    except Exception as err:
        reported = _request_failure(request, settings, watch.error_for(err), reading_body=reading_body)
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
            observe(settings, status, headers, err.retry_after)
            failure = settings.retry.check_wait_acceptable(err)
        else:
            observe(settings, status, headers, None)
            return result
    # Raised here, outside the except clauses, so that no error is chained to what the library raised
    # (implicitly, as __context__) unless it is a network failure, whose text holds no header.
    try:
        raise failure from cause
    finally:
        # The traceback holds this frame: without this, frame -> error -> traceback -> frame is a
        # reference cycle per failed call (see the async transport's _send_once).
        del failure, cause


def _stream_once(
    http: requests.Session, request: ApiRequest, settings: ConnectionSettings, write: Callable[[bytes], Any]
) -> int:
    import requests

    failure: DevRevError | None = None
    cause: BaseException | None = None
    written = 0
    content = b""
    with RequestWatch(time.monotonic() + settings.request_timeout, settings.connect_timeout) as watch:
        try:
            response = watch.answered(_request(http, request, settings))
        except Exception as err:
            reported = _request_failure(request, settings, watch.error_for(err))
            if reported is None:
                raise
            failure, cause = reported
            count_unanswered(request, failure)
        if failure is not None:
            # Outside the except clause, as in _send_once: no implicit __context__ to the library's exception.
            raise failure from cause
        with response:
            metrics.request_answered(request.path, response.status_code)
            answered = 200 <= response.status_code < 300
            chunks = _body(response, watch, limit=None if answered else MAX_ERROR_BODY_BYTES)
            while True:
                # Only the reads are the transport's to report: an exception from write ends the call as it is.
                try:
                    chunk = next(chunks, b"")
                except (requests.RequestException, TimeoutError) as err:
                    reported = _request_failure(request, settings, watch.error_for(err), reading_body=True)
                    failure, cause = reported or (_network_failure(request, settings, err), err)
                    break
                if not chunk:
                    break
                if not answered:
                    content += chunk
                    continue
                write(chunk)
                written += len(chunk)
    if failure is not None and written:
        # Bytes already written cannot be taken back: the caller discards them and the error is final.
        failure = DevRevUnexpectedResponseError(
            f"{failure.message}; the body was cut after {written} bytes, nothing was published",
            status_code=200,
            error_type="incomplete_body",
        )
    if failure is None and not answered:
        refused = error_from_response(request, response.status_code, response.headers, content)
        observe(settings, response.status_code, response.headers, refused.retry_after)
        failure = settings.retry.check_wait_acceptable(refused)
    elif failure is None:
        observe(settings, response.status_code, response.headers, None)
    if failure is not None:
        raise failure from cause
    return written


def _request_failure(
    request: ApiRequest, settings: ConnectionSettings, error: BaseException, *, reading_body: bool = False
) -> tuple[DevRevError, BaseException | None] | None:
    """
    How an exception from ``requests`` while sending ``request`` is reported: the typed error, and the cause it
    may be chained to, or ``None`` for an exception that is not the library's (it propagates as it is).

    A timeout is named for the hop where the request stalled: connecting (the TCP handshake, a proxy's answer
    to ``CONNECT``, the TLS handshake), waiting for the answer or reading the body (``reading_body`` says
    which), or the whole request (the ``request_timeout`` extra, a bare ``TimeoutError`` from :func:`_body` or
    :meth:`RequestWatch.error_for`), in the words the async transport uses.

    Only a network failure keeps its cause: its text holds no header. A certificate that did not verify or a
    proxy that refused the tunnel is final and unchained (requests' exceptions hold the proxy's
    Proxy-Authorization header in their attributes); a request the library refuses to send (an invalid header or
    URL, an encoding error) is final and unchained too, since requests quotes an invalid header, token included.
    """
    import requests

    if isinstance(error, requests.ConnectTimeout) or (
        isinstance(error, requests.Timeout) and not reading_body and _while_connecting(error)
    ):
        return timeout_failure(request, settings, "connect"), error
    if isinstance(error, requests.Timeout):
        return timeout_failure(request, settings, "body" if reading_body else "answer"), error
    if isinstance(error, TimeoutError):
        return timeout_failure(request, settings, "request"), error
    if isinstance(error, requests.exceptions.SSLError):
        tls = _tls_failure(request, settings, error)
        return (tls, None) if tls is not None else (_network_failure(request, settings, error), error)
    if isinstance(error, requests.exceptions.ProxyError):
        proxy, status = settings.network.proxy, tunnel_status(error)
        reason = proxy_unreachable_reason(error, proxy) if proxy is not None and status is None else None
        return proxy_failure(request.describe(), settings.base_url, proxy, status, reason), None
    if isinstance(error, _network_errors()):
        return _network_failure(request, settings, error), error
    if isinstance(error, (requests.RequestException, ValueError, TypeError, LookupError)):
        return unsendable_request_error(request, settings.base_url, error), None
    return None


def _request_options(settings: ConnectionSettings) -> dict[str, Any]:
    """
    The arguments of every request made with ``settings`` besides its body: timeouts, no redirects, and the
    body left for :func:`_body` to read (the headers, the route and the trust are the session's, see
    :func:`new_session`).
    """
    return {"timeout": (settings.connect_timeout, settings.read_timeout), "allow_redirects": False, "stream": True}


def _request(http: requests.Session, request: ApiRequest, settings: ConnectionSettings) -> requests.Response:
    kwargs: dict[str, Any] = {"json": request.body, **_request_options(settings)}
    if settings.network.verify:
        return http.request(request.method, request.url(settings.base_url), **kwargs)
    import warnings

    from urllib3.exceptions import InsecureRequestWarning

    # The hook warned once (verify_tls=false); urllib3 would warn again at every request.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InsecureRequestWarning)
        return http.request(request.method, request.url(settings.base_url), **kwargs)


def _network_failure(request: ApiRequest, settings: ConnectionSettings, error: BaseException) -> DevRevError:
    return network_failure(request.describe(), settings.base_url, error, settings.network.proxy)


def _body(response: requests.Response, watch: RequestWatch, *, limit: int | None = None) -> Iterator[bytes]:
    """
    The body of ``response`` in chunks of :data:`STREAM_CHUNK_BYTES` (the last one shorter), up to ``limit``
    bytes, as ``iter_content`` gives them, but gathered one network read at a time.

    :param watch: The request's watch: no read starts after its deadline, and a body that ended because the
        watch cut the connection is not taken for the whole body.
    :raises TimeoutError: the deadline passed (bare, as aiohttp raises its ``total`` timeout).
    :raises requests.RequestException: a read failed; urllib3's errors become those ``requests`` raises for
        them, except that a read timeout stays a timeout (``requests`` makes it a ``ConnectionError``).
    """
    import requests
    from urllib3.exceptions import DecodeError, ProtocolError, ReadTimeoutError, SSLError

    left = limit
    chunk = bytearray()
    while left is None or left > 0:
        if watch.expired():
            raise deadline_error()
        amount = STREAM_CHUNK_BYTES - len(chunk) if left is None else min(left, STREAM_CHUNK_BYTES - len(chunk))
        try:
            # read1: what one read of the socket brings; read() would wait for the whole amount, and a body
            # trickling in would never reach the deadline check.
            data = response.raw.read1(amount, decode_content=True)
        except ReadTimeoutError as err:
            raise requests.ReadTimeout(err) from err
        except ProtocolError as err:
            raise requests.exceptions.ChunkedEncodingError(err) from err
        except DecodeError as err:
            raise requests.exceptions.ContentDecodingError(err) from err
        except SSLError as err:
            raise requests.exceptions.SSLError(err) from err
        if not data:
            break
        chunk += data
        if left is not None:
            left -= len(data)
        if len(chunk) >= STREAM_CHUNK_BYTES:
            yield bytes(chunk)
            chunk.clear()
    if watch.cut is not None:
        raise deadline_error()
    if chunk:
        yield bytes(chunk)


def _while_connecting(error: BaseException) -> bool:
    """
    Whether a read timeout of ``requests`` happened while connecting: urllib3 raises a stalled proxy ``CONNECT``
    or TLS handshake as a read timeout, like a stalled answer, and only where it was raised tells them apart:
    inside the connection's ``connect()`` (http.client's and urllib3's name for opening the TCP connection,
    the proxy tunnel and the TLS session).
    """
    return any(
        frame.f_code.co_name == "connect"
        for link in exception_chain(error)
        for frame, _ in traceback.walk_tb(link.__traceback__)
    )


def _network_errors() -> tuple[type[BaseException], ...]:
    """The ``requests`` errors that mean the network failed (retried), as opposed to a refused request."""
    import requests

    return (
        requests.ConnectionError,
        requests.exceptions.ChunkedEncodingError,
        requests.exceptions.ContentDecodingError,
        requests.exceptions.RetryError,
    )


def _tls_failure(request: ApiRequest, settings: ConnectionSettings, error: BaseException) -> DevRevError | None:
    """The final error for a certificate that did not verify, or ``None`` for another TLS failure (transient)."""
    import ssl

    for link in exception_chain(error):
        if isinstance(link, ssl.SSLCertVerificationError):
            reason = link.verify_message or str(link)
            return tls_error(request.describe(), settings.base_url, settings.network, reason)
    return None
