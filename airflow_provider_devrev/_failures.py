"""
What went wrong on the way to DevRev, in the same words whichever transport met it.

``requests`` and aiohttp wrap the operating system's and OpenSSL's errors in their own classes, several layers
deep; a user needs the layer at the bottom: the name did not resolve, the port was closed, the peer reset the
connection, the TLS handshake failed. Both transports hand their exception to :func:`network_failure`, which
walks the chain (:func:`~airflow_provider_devrev.network.exception_chain`) to that layer and names it, with the
host, so ``devrev.invalid`` and a closed port and an ``http://`` server behind ``https://`` no longer read the
same. The texts quote only OpenSSL's reason and the resolver's words, never a header, so no secret.

Each is a transient :class:`~airflow_provider_devrev.exceptions.DevRevServerError` without a status (retried,
and a sensor keeps waiting): a resolver, a port or a peer can come back. A certificate that does not verify and
a proxy refusing the tunnel are final, and worded in :mod:`airflow_provider_devrev.network`.
"""

from __future__ import annotations

import socket
import ssl
from urllib.parse import urlsplit

from airflow_provider_devrev import metrics
from airflow_provider_devrev._api_answers import UNSENT
from airflow_provider_devrev.connection import ConnectionSettings
from airflow_provider_devrev.contract import ApiRequest, no_response_error
from airflow_provider_devrev.exceptions import DevRevError, DevRevServerError
from airflow_provider_devrev.network import Proxy, exception_chain

#: ``error_type`` of every failure to get an answer other than a timeout.
CONNECTION_ERROR = "connection_error"

# The class names of the libraries' "answered, but not in HTTP" errors: aiohttp's parser, http.client's.
_NOT_HTTP = frozenset(
    {
        "ClientResponseError",
        "BadStatusLine",
        "LineTooLong",
        "HeaderParsingError",
        "UnknownProtocol",
        "InvalidChunkLength",
    }
)
# The class names of the libraries' "closed before the answer" errors, matched by name so that this module
# imports neither library (aiohttp must not load where only requests is used, and the reverse).
_CLOSED = frozenset({"RemoteDisconnected", "ServerDisconnectedError", "IncompleteRead", "ClientPayloadError"})


def network_failure(what: str, base_url: str, error: BaseException, proxy: Proxy | None = None) -> DevRevServerError:
    """
    The transient error for a request that got no answer because the network failed (not a timeout).

    :param what: ``METHOD /path`` of the request.
    :param base_url: Where it was sent; its host is named.
    :param error: What the HTTP library raised.
    :param proxy: The proxy the request went through, named when the failure was reaching it.
    """
    parts = urlsplit(base_url)
    reason = failure_reason(error, parts.hostname or base_url, parts.port or (443 if parts.scheme == "https" else 80))
    return DevRevServerError(
        f"{what} to {base_url}{_via(proxy)} failed: {reason}",
        error_type=CONNECTION_ERROR,
        detail=reason,
    )


#: Which of a connection's timeouts ran out, by where the request stalled (see ``TIMEOUT_WORDS``).
_TIMEOUT_SECONDS = {
    "connect": "connect_timeout",
    "answer": "read_timeout",
    "body": "read_timeout",
    "request": "request_timeout",
}


def timeout_failure(request: ApiRequest, settings: ConnectionSettings, kind: str) -> DevRevServerError:
    """
    The transient error for ``request`` timing out where ``kind`` says (``connect``, ``answer``, ``body`` or
    ``request``), with the timeout that ran out; a connect timeout names the proxy, if one was used.
    """
    proxy = settings.network.proxy
    return no_response_error(
        request,
        settings.base_url,
        timeout=getattr(settings, _TIMEOUT_SECONDS[kind]),
        timeout_kind=kind,
        proxy=f"{proxy.display} ({proxy.source})" if proxy is not None else None,
    )


def count_unanswered(request: ApiRequest, failure: DevRevError) -> None:
    """
    Count an attempt that failed before DevRev's status line arrived (a refused connection, a timeout, a reset,
    a TLS or proxy failure) as ``devrev.requests.<endpoint>.no_response``. Each attempt counts once: by its
    status as soon as that arrives, or by this. A request the HTTP library refused to build never left, so it
    is not counted.
    """
    if failure.error_type != UNSENT:
        metrics.request_answered(request.path, None)


def failure_reason(error: BaseException, host: str, port: int) -> str:
    """
    What the bottom of ``error``'s chain says, as a short phrase naming ``host``: could not resolve, refused,
    reset, closed before an answer, the TLS handshake failed; or the library's class name when none of those.
    """
    chain = exception_chain(error)
    names = {type(link).__name__ for link in chain}
    if "ClientConnectorDNSError" in names or "NameResolutionError" in names or _has(chain, socket.gaierror):
        return f"could not resolve the host {host} (DNS)"
    if _has(chain, ConnectionRefusedError):
        return f"connection refused by {host}:{port} (nothing listening, or a firewall)"
    handshake = _tls_handshake_error(chain)
    if handshake is not None:
        return handshake
    # RemoteDisconnected is a BadStatusLine too; urllib3 reports a chunk size that is not a number as an
    # IncompleteRead caused by int()'s ValueError.
    garbled_chunk = "IncompleteRead" in names and _has(chain, ValueError)
    if (names & _NOT_HTTP and "RemoteDisconnected" not in names) or garbled_chunk:
        return f"{host} answered something that is not valid HTTP"
    if names & _CLOSED:  # before resets: http.client's RemoteDisconnected is a ConnectionResetError
        return f"{host} closed the connection before answering"
    if _has(chain, ConnectionResetError) or _has(chain, ConnectionAbortedError) or _has(chain, BrokenPipeError):
        return f"connection reset by {host}"
    return f"could not reach {host} ({type(error).__name__})"


def proxy_unreachable_reason(error: BaseException, proxy: Proxy) -> str:
    """Why a proxy could not be reached, in the words of :func:`failure_reason`, naming the proxy's host."""
    parts = urlsplit(proxy.url)
    return failure_reason(error, parts.hostname or proxy.url, parts.port or 80)


def _tls_handshake_error(chain: list[BaseException]) -> str | None:
    failed = [link for link in chain if isinstance(link, ssl.SSLError)]
    if not failed or any(isinstance(link, ssl.SSLCertVerificationError) for link in failed):
        return None  # no handshake failure, or a certificate that did not verify (final, worded elsewhere)
    # aiohttp wraps OpenSSL's error in an SSLError of its own without a ``reason``: the wrapped one has it.
    reasons = [reason for link in failed if isinstance(reason := getattr(link, "reason", None), str)]
    for reason in reasons or [type(failed[0]).__name__]:
        if reason == "WRONG_VERSION_NUMBER":
            # What an https:// client hears from a plain-HTTP server: a host given without a scheme
            # (https:// is assumed) pointed at an http:// simulator or gateway.
            return "TLS handshake failed (WRONG_VERSION_NUMBER): is this an http:// URL?"
        return f"TLS handshake failed ({reason})"
    return None


def _has(chain: list[BaseException], kind: type[BaseException]) -> bool:
    return any(isinstance(link, kind) for link in chain)


def _via(proxy: Proxy | None) -> str:
    return f" through the proxy {proxy.display}" if proxy is not None else ""
