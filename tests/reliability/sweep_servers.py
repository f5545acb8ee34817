"""
Small real servers on 127.0.0.1 for the secret sweep (``test_secret_sweep.py``, ``tests/test_secrets.py``).

- :class:`EchoServer`: answers every request with a status of the test's choosing and an HTML page that quotes
  the request back, its ``Authorization`` and ``Proxy-Authorization`` headers first, as a misconfigured
  gateway or a debugging endpoint does.
- :class:`RawProxy`: a forward proxy in this process, so each example can give it another password (the
  project's ``proxy.py`` runs in its own process with one fixed password). It forwards (``CONNECT`` tunnels
  and plain-HTTP requests), or answers the request itself with the echo page (a 407, a gateway error), or
  accepts and closes.
- :func:`closed_port`: a port nothing listens on (connection refused).

Each connection is served on its own daemon thread; every read has a timeout, so nothing here can hang a test.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
from http import HTTPStatus

#: Seconds any read of these servers waits before giving up on a silent peer.
IO_TIMEOUT = 10.0
AUTH_HEADERS = (b"authorization:", b"proxy-authorization:")


def closed_port() -> int:
    """A loopback port with nothing listening on it: bound, then closed, so the kernel just freed it."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class _RawServer:
    def __init__(self) -> None:
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self.port = int(self._listener.getsockname()[1])
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def start(self) -> _RawServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        # shutdown() wakes the accept() blocked in the other thread; close() alone would not on Linux.
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        self._thread.join(timeout=IO_TIMEOUT)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(IO_TIMEOUT)
        try:
            with conn:
                self.handle(conn)
        except OSError:
            pass  # the client went away: nothing to answer

    def handle(self, conn: socket.socket) -> None:
        raise NotImplementedError


class NotHttp(Exception):
    """The client spoke something else (a TLS handshake to this plain-HTTP server)."""


def read_request(conn: socket.socket) -> tuple[bytes, bytes]:
    """The head of one request (up to its blank line) and its body (by ``Content-Length``)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            raise ConnectionError("closed before the end of the request head")
        data += chunk
        if not data[:1].isalpha():
            raise NotHttp
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            break
        body += chunk
    return head, body


def echo_page(status: int, head: bytes, prefix: str = "") -> bytes:
    """An answer with ``status`` whose HTML quotes ``head``, its auth headers first, after ``prefix``."""
    lines = head.split(b"\r\n")
    auth = [line for line in lines if line.lower().startswith(AUTH_HEADERS)]
    quoted = b"\n".join([*auth, *lines]).decode("latin-1")
    reason = HTTPStatus(status).phrase
    # The quote first (after ``prefix``), so where the token sits does not depend on the status's wording.
    page = f"{prefix}<pre>{quoted}</pre><h1>{status} {reason}</h1>".encode()
    return (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: text/html\r\nContent-Length: {len(page)}\r\n"
        "Connection: close\r\n\r\n"
    ).encode() + page


class EchoServer(_RawServer):
    """
    Answers each request with :attr:`status` and :func:`echo_page`.

    :attr prefix: Text before the quoted headers, so a test can put the token exactly where an excerpt is cut.
    """

    def __init__(self) -> None:
        super().__init__()
        self.status = 401
        self.prefix = ""

    def handle(self, conn: socket.socket) -> None:
        try:
            head, _ = read_request(conn)
        except NotHttp:
            # As a plain-HTTP server answers a TLS handshake: at once, in HTTP, which the client cannot read.
            conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            return
        conn.sendall(echo_page(self.status, head, self.prefix))


class RawProxy(_RawServer):
    """
    A forward proxy whose behaviour the test sets per example (:attr:`mode`):

    - ``forward``: tunnels a ``CONNECT``, forwards a plain-HTTP request (without ``Proxy-Authorization``);
    - ``echo``: answers the request (``CONNECT`` or plain) itself with :attr:`status` and the echo page
      (after :attr:`prefix`);
    - ``close``: reads the request and closes the connection without a word.
    """

    def __init__(self) -> None:
        super().__init__()
        self.mode = "forward"
        self.status = 407
        self.prefix = ""

    def handle(self, conn: socket.socket) -> None:
        head, body = read_request(conn)
        mode = self.mode
        if mode == "close":
            return
        if mode == "echo":
            conn.sendall(echo_page(self.status, head, self.prefix))
            return
        method, target, _ = head.split(b"\r\n", 1)[0].split(b" ", 2)
        if method == b"CONNECT":
            self._tunnel(conn, target.decode())
        else:
            self._forward(conn, head, body)

    def _tunnel(self, conn: socket.socket, target: str) -> None:
        host, _, port = target.rpartition(":")
        try:
            upstream = socket.create_connection((host, int(port)), timeout=IO_TIMEOUT)
        except OSError:
            conn.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            return
        with upstream:
            conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            _relay(conn, upstream)

    def _forward(self, conn: socket.socket, head: bytes, body: bytes) -> None:
        request_line, *headers = head.split(b"\r\n")
        method, url, version = request_line.split(b" ", 2)
        rest = url.split(b"://", 1)[1]
        authority, _, path = rest.partition(b"/")
        host, _, port = authority.decode().rpartition(":")
        kept = [
            line
            for line in headers
            if not line.lower().startswith((b"proxy-authorization:", b"connection:", b"proxy-connection:"))
        ]
        try:
            upstream = socket.create_connection((host, int(port or 80)), timeout=IO_TIMEOUT)
        except OSError:
            conn.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            return
        with upstream:
            upstream.sendall(
                b"\r\n".join([b" ".join([method, b"/" + path, version]), *kept, b"Connection: close"])
                + b"\r\n\r\n"
                + body
            )
            answer = b""
            while b"\r\n\r\n" not in answer:
                chunk = upstream.recv(65536)
                if not chunk:
                    break
                answer += chunk
            # The client must not keep this connection: the next request would find it closed.
            answer_head, _, rest_of_body = answer.partition(b"\r\n\r\n")
            lines = [line for line in answer_head.split(b"\r\n") if not line.lower().startswith(b"connection:")]
            conn.sendall(b"\r\n".join([*lines, b"Connection: close"]) + b"\r\n\r\n" + rest_of_body)
            _relay(upstream, conn, one_way=True)


def _relay(a: socket.socket, b: socket.socket, *, one_way: bool = False) -> None:
    """Copy bytes between ``a`` and ``b`` (only ``a`` to ``b`` if ``one_way``) until one side closes."""
    sources = [a] if one_way else [a, b]
    while True:
        ready, _, _ = select.select(sources, [], [], IO_TIMEOUT)
        if not ready:
            return
        for source in ready:
            data = source.recv(65536)
            if not data:
                return
            (b if source is a else a).sendall(data)
