"""
The whole-request deadline of the sync transport (the ``request_timeout`` extra), and the ``requests``
adapter every sync session mounts to keep it.

``requests`` bounds each socket operation (its ``timeout``) but not a request: a server or proxy that sends a
byte of its headers or body every second never trips a per-read timeout, and ``http.client`` reads a header
line of 64 KiB and a hundred headers before it gives up, so such a request would hold a worker for hours.
aiohttp's ``total`` timeout ends it in the async transport. Here, :class:`RequestWatch` keeps the request's
deadline; the adapter's connections tell the watch of the calling thread which connection the
request uses (when it connects and when it sends), and at the deadline the watch shuts that connection's
socket down, which ends the read blocked on it at once. The transport then reports the request_timeout, not
what the cut read raised.

One daemon thread per process (:class:`Watchdog`) keeps every watch's times: a timer thread per request would
cost about 150 us of CPU per request to start (a third of a sync request to the simulator), the watchdog a
lock and a dict entry. The triggerer (the async transport) never comes here.

``requests`` and ``urllib3`` are imported on first use, as in ``_sync_transport.py``.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import requests

#: Seconds between two looks at a connection still without a socket when the deadline passed (its TCP
#: connect is under way, which the connect timeout bounds): the tunnel and the TLS handshake that follow
#: are cut as soon as the socket is there.
RECHECK_EVERY = 0.05

_current = threading.local()
#: Ids of the actions of every watchdog of the process: a watch made before a fork and ended after it cancels
#: its ids in the child's new watchdog, where no other action may have them.
_action_ids = itertools.count(1)
log = logging.getLogger(__name__)


class Watchdog:
    """
    Runs actions at their times, in one daemon thread started on first use (and again in a forked child,
    which has none). An action must be short: it delays the ones due after it.
    """

    def __init__(self) -> None:
        self._wake = threading.Condition()
        self._due: dict[int, tuple[float, Callable[[], None]]] = {}
        self._thread: threading.Thread | None = None
        #: When the thread wakes next on its own (``inf``: only when told).
        self._wakes_at = float("inf")

    def schedule(self, at: float, action: Callable[[], None]) -> int:
        """Run ``action`` at ``time.monotonic()`` ``at``, unless cancelled; returns the id to cancel it by."""
        with self._wake:
            action_id = next(_action_ids)
            self._due[action_id] = (at, action)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="devrev-request-watchdog", daemon=True)
                self._thread.start()
            # Only a time before the thread's next waking changes how long it sleeps: with the same timeout
            # for each request, a request's deadline comes after those of the requests before it.
            if at < self._wakes_at:
                self._wake.notify()
            return action_id

    def cancel(self, action_id: int) -> None:
        """``action_id``'s action will not run (unless it already is)."""
        with self._wake:
            # No wake-up: the thread may wake at the cancelled time, finds nothing due, and sleeps on.
            self._due.pop(action_id, None)

    def _run(self) -> None:
        while True:
            with self._wake:
                now = time.monotonic()
                # In time order (ids break ties in the order scheduled).
                due = sorted((at, action_id) for action_id, (at, _) in self._due.items() if at <= now)
                actions = [self._due.pop(action_id)[1] for _, action_id in due]
                if not actions:
                    self._wakes_at = min((at for at, _ in self._due.values()), default=float("inf"))
                    self._wake.wait(None if self._wakes_at == float("inf") else self._wakes_at - now)
                    self._wakes_at = -float("inf")  # awake: it looks at every time before it sleeps again
                    continue
            for action in actions:
                try:
                    action()
                except Exception:
                    # The thread must outlive any one action: it keeps every deadline of the process, and the
                    # ones already due with this action, or due before the next schedule(), would pass unseen.
                    log.exception("DevRev request watchdog: an action failed; the others still run")


WATCHDOG = Watchdog()


def _new_watchdog() -> None:
    # A forked child (a Celery or local executor's task) has none of its parent's threads, and the parent's
    # lock may have been held at the fork.
    global WATCHDOG
    WATCHDOG = Watchdog()


os.register_at_fork(after_in_child=_new_watchdog)


class RequestWatch:
    """
    Shuts down the socket of the request made in this thread, inside the ``with`` block, if it is still
    running at ``deadline``, or still connecting ``connect_timeout`` after its connection began to connect.

    :param deadline: ``time.monotonic()`` at which the request must be over.
    :param connect_timeout: Seconds a new connection may take up to its TLS handshake as a whole: the TCP
        handshake and the proxy's answer to ``CONNECT``, as aiohttp's ``connect`` timeout bounds them (urllib3
        bounds each read of them alone). The TLS handshake runs on a socket the watch cannot reach until it ends:
        each of its reads is bounded by the connect timeout, and a handshake that trickles ends only with it.
    """

    def __init__(self, deadline: float, connect_timeout: float) -> None:
        self.deadline = deadline
        self.connect_timeout = connect_timeout
        #: What the watch cut, if it did: ``"request"`` (the deadline passed) or ``"connect"``. The request's
        #: error, or a body that ended early, is then the watch's doing.
        self.cut: str | None = None
        self._lock = threading.Lock()
        self._done = False
        self._connection: Any = None
        self._connecting: Any = None
        self._scheduled: list[int] = []

    def __enter__(self) -> RequestWatch:
        _current.watch = self
        self._schedule(self.deadline, self._fire)
        return self

    def __exit__(self, *exc_info: object) -> None:
        _current.watch = None
        with self._lock:
            self._done = True
            self._connection = self._connecting = None
            for action_id in self._scheduled:
                WATCHDOG.cancel(action_id)

    def expired(self) -> bool:
        """Whether the deadline has passed (the watchdog may not have cut the request yet)."""
        return self.cut is not None or time.monotonic() >= self.deadline

    def answered(self, response: requests.Response) -> requests.Response:
        """``response``, or the deadline's ``TimeoutError`` if the watch cut the request as its headers arrived."""
        if self.cut is not None:
            # http.client takes the end of a cut stream for the end of the headers: this is no answer.
            response.close()
            raise deadline_error()
        return response

    def error_for(self, error: Exception) -> Exception:
        """
        ``error``, raised by the library during the request, or the timeout the watch enforced if it cut the
        request (the library then only says that the connection closed under its read): a bare
        ``TimeoutError`` for the deadline, ``ConnectTimeout`` for a connect longer than the connect timeout.
        """
        import requests

        if self.cut is None or not isinstance(error, (requests.RequestException, OSError)):
            return error
        if self.cut == "connect":
            return requests.ConnectTimeout("the connect timeout ran out")
        return deadline_error()

    def attach(self, connection: Any) -> None:
        """The request now uses ``connection``: cut it at once if the deadline has passed."""
        with self._lock:
            self._connection = connection
            if self.cut == "request":
                self._cut_request()

    @contextlib.contextmanager
    def connecting(self, connection: Any) -> Iterator[None]:
        """The block connects ``connection``: cut it if it is not done within the connect timeout."""
        with self._lock:
            self._connecting = connection
            self._schedule(time.monotonic() + self.connect_timeout, functools.partial(self._fire_connect, connection))
        try:
            yield
        finally:
            with self._lock:
                self._connecting = None

    def _schedule(self, at: float, action: Callable[[], None]) -> None:
        # With the lock held, or before the watch is shared.
        self._scheduled.append(WATCHDOG.schedule(at, action))

    def _fire(self) -> None:
        with self._lock:
            if self._done:
                return
            self.cut = "request"
            self._cut_request()

    def _cut_request(self) -> None:
        # With the lock held. No connection yet: attach() cuts the one the request takes.
        if self._connection is not None and not _shut_down(self._connection):
            self._schedule(time.monotonic() + RECHECK_EVERY, self._fire)

    def _fire_connect(self, connection: Any) -> None:
        with self._lock:
            # Still without a socket: the TCP connect is under way, and the connect timeout ends it as well.
            if not self._done and self._connecting is connection and self.cut is None and _shut_down(connection):
                self.cut = "connect"


def deadline_error() -> TimeoutError:
    """
    What a request past its ``request_timeout`` raises: bare, as aiohttp's ``total`` timeout is, for the
    transport to name.
    """
    return TimeoutError("the request_timeout ran out")


def current_watch() -> RequestWatch | None:
    """The watch of the request this thread is making, if any."""
    return getattr(_current, "watch", None)


def _shut_down(connection: Any) -> bool:
    """
    Shut down ``connection``'s socket; ``False`` if it has none to shut down: none yet (the TCP connect is under
    way), or it was handed to TLS (the handshake runs on a socket urllib3 sets when it ends, each of its reads
    bounded by the connect timeout), or it is closed.
    """
    sock = connection.sock
    # A TLS layer that is not ssl.SSLSocket (urllib3's SSLTransport, pyOpenSSL's WrappedSocket once injected
    # into urllib3) keeps the socket it runs on as .socket: socket.socket.shutdown() takes only a socket.
    # (Two layers at most: TLS in TLS.)
    for _ in range(2):
        if sock is None or isinstance(sock, socket.socket):
            break
        sock = getattr(sock, "socket", None)
    if not isinstance(sock, socket.socket) or sock.fileno() == -1:
        return False
    # socket.socket's own shutdown, not ssl.SSLSocket's: that one drops the TLS object first, under the read
    # still running in the request's thread. Closed meanwhile: nothing left to cut.
    with contextlib.suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    return True


class _Watched:
    """Tells the current watch which connection the request uses, as it connects and as it sends."""

    sock: Any

    def connect(self) -> None:
        watch = current_watch()
        if watch is None:
            super().connect()  # type: ignore[misc]
            return
        watch.attach(self)
        with watch.connecting(self):
            super().connect()  # type: ignore[misc]

    def request(self, *args: Any, **kwargs: Any) -> None:
        watch = current_watch()
        if watch is not None:
            watch.attach(self)
        super().request(*args, **kwargs)  # type: ignore[misc]


@functools.cache
def _watched_classes() -> dict[type, type]:
    """urllib3's connection classes, each with the one to use instead (the provider has no SOCKS proxy)."""
    from urllib3.connection import HTTPConnection, HTTPSConnection

    class WatchedHTTPConnection(_Watched, HTTPConnection):
        pass

    class WatchedHTTPSConnection(_Watched, HTTPSConnection):
        pass

    return {HTTPConnection: WatchedHTTPConnection, HTTPSConnection: WatchedHTTPSConnection}


def adapter(ca_file: str | None = None, ca_dir: str | None = None) -> requests.adapters.HTTPAdapter:
    """
    The adapter of every sync session: its connection pools' connections report to the request's watch.

    :param ca_file: With ``ca_dir``, trust both at once (``SSL_CERT_FILE`` with ``SSL_CERT_DIR``, or several
        directories in ``SSL_CERT_DIR``), as the async transport's ``SSLContext`` does: requests' ``verify``
        takes one path, so the paths are set on each connection pool where requests would set certifi's.
    :param ca_dir: See ``ca_file``; neither: the session's ``verify`` alone decides the trust.
    """
    from requests.adapters import HTTPAdapter

    combined_trust = ca_file is not None or ca_dir is not None

    class WatchedAdapter(HTTPAdapter):
        def get_connection_with_tls_context(self, *args: Any, **kwargs: Any) -> Any:
            pool: Any = super().get_connection_with_tls_context(*args, **kwargs)
            # A pool is made once per host and route and kept: its connection class is replaced once.
            pool.ConnectionCls = _watched_classes().get(pool.ConnectionCls, pool.ConnectionCls)
            return pool

        def cert_verify(self, conn: Any, url: str, verify: Any, cert: Any) -> None:
            super().cert_verify(conn, url, verify, cert)
            if combined_trust and verify is not False and url.lower().startswith("https"):
                conn.ca_certs, conn.ca_cert_dir = ca_file, ca_dir

    return WatchedAdapter()
