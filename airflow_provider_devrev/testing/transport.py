"""HTTP/1.1 transport of the DevRev simulator: ``http.server`` with keep-alive, body framing and clean stops.

The transport knows nothing of the API: for each request it asks an :class:`Application` for an
:class:`Exchange`, sends the :class:`~airflow_provider_devrev.testing.protocol.Reply` it produces (or
nothing, for a dropped connection) and reports what was sent.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import ssl
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from socketserver import TCPServer
from typing import Any, Protocol

from airflow_provider_devrev.testing.protocol import Reply, json_reply

MAX_BODY_BYTES = 1 << 20
DRAIN_LIMIT_BYTES = 64 << 20


class Exchange(Protocol):
    """One request being answered."""

    def respond(self, stop: threading.Event) -> Reply:
        """The reply; ``stop`` is set when the server is stopping (a delayed reply should give up)."""
        ...

    def answering(self, status: int) -> None:
        """Called just before a reply with ``status`` is written, so a client that has read the reply
        always finds it recorded."""
        ...

    def finished(self) -> None:
        """Called once the reply is written (or the connection dropped): the request is no longer in flight."""
        ...


class Application(Protocol):
    """What the transport serves."""

    def connection_opened(self) -> None: ...

    def begin(self, method: str, target: str, headers: dict[str, str], raw_body: bytes) -> Exchange: ...


def serve(
    address: tuple[str, int], app: Application, ssl_context: ssl.SSLContext | None = None
) -> tuple[HttpServer, threading.Thread]:
    """Bind ``address`` and serve ``app`` from a daemon thread.

    :param address: ``(host, port)``; port 0 picks a free port (read it from ``server.server_port``).
    :param app: the application.
    :param ssl_context: a server-side context to serve HTTPS; ``None`` serves plain HTTP.
    :raises OSError: when the address cannot be bound.
    """
    server = HttpServer(address, app, ssl_context)
    thread = threading.Thread(target=server.accept_loop, name="devrev-simulator", daemon=True)
    thread.start()
    return server, thread


def stop(server: HttpServer, thread: threading.Thread) -> None:
    """Stop serving, cut open connections and free the port; returns without waiting for a poll tick."""
    server.stop_event.set()  # also wakes delayed replies, which then drop their connection
    server.wake()
    thread.join(timeout=5)
    server.close_connections()
    server.server_close()


class _BodyError(Exception):
    def __init__(self, reply: Reply, *, close: bool = True) -> None:
        super().__init__(reply.status)
        self.reply = reply
        self.close = close


class HttpServer(ThreadingHTTPServer):
    """A threading HTTP/1.1 server that can cut its open keep-alive connections when stopping."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], app: Application, ssl_context: ssl.SSLContext | None = None) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.app = app
        self.ssl_context = ssl_context
        self.stop_event = threading.Event()
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        self._wake_read, self._wake_write = socket.socketpair()
        super().__init__(address, _Handler)

    def accept_loop(self) -> None:
        """Accept connections until ``stop_event``.

        Used instead of ``serve_forever``, whose ``shutdown()`` only takes effect at the next poll tick:
        here a byte on a socket pair ends the wait at once, so stopping (once per test) costs no time.
        """
        with selectors.DefaultSelector() as selector:
            selector.register(self.socket, selectors.EVENT_READ)
            selector.register(self._wake_read, selectors.EVENT_READ)
            while not self.stop_event.is_set():
                ready = {key.fileobj for key, _ in selector.select()}
                if self.socket in ready and not self.stop_event.is_set():
                    self.handle_request()  # accepts one connection, or returns at once if it went away

    def get_request(self) -> tuple[socket.socket, Any]:
        conn, address = super().get_request()
        if self.ssl_context is not None:
            # The handshake happens in the connection's own thread (see _Handler.setup), so a client that
            # stalls or rejects the certificate never holds up the accept loop.
            conn = self.ssl_context.wrap_socket(conn, server_side=True, do_handshake_on_connect=False)
        return conn, address

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that rejected our certificate, or hung up mid-handshake, is what TLS tests are about:
        # not worth a traceback. Anything else is a simulator bug and stays loud.
        if isinstance(sys.exc_info()[1], OSError):
            return
        super().handle_error(request, client_address)

    def wake(self) -> None:
        with contextlib.suppress(OSError):
            self._wake_write.send(b"x")

    def server_close(self) -> None:
        super().server_close()
        self._wake_read.close()
        self._wake_write.close()

    def server_bind(self) -> None:
        # HTTPServer.server_bind does a reverse DNS lookup (getfqdn) that can stall on a machine without
        # network; the name is never used here.
        TCPServer.server_bind(self)
        # Non-blocking accept: a connection reset between readiness and accept() must not wedge the loop.
        self.socket.setblocking(False)
        self.server_name = str(self.server_address[0])
        self.server_port = int(self.server_address[1])

    def track(self, conn: socket.socket, *, opened: bool) -> None:
        with self._open_lock:
            if not opened:
                self._open.discard(conn)
            elif self.stop_event.is_set():
                # Accepted while stopping: refuse it rather than serve after stop() returned.
                _shutdown(conn)
            else:
                self._open.add(conn)

    def close_connections(self) -> None:
        # Keep-alive sockets would otherwise let a pooled client connection be answered after stop().
        with self._open_lock:
            for conn in self._open:
                _shutdown(conn)
            self._open.clear()


def _shutdown(conn: socket.socket) -> None:
    with contextlib.suppress(OSError):  # already closed by the peer
        conn.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "DevRevSimulator/1.0"
    timeout = 120  # idle keep-alive connections end eventually
    disable_nagle_algorithm = True  # headers and body go out in two writes; avoid delayed-ACK stalls
    server: HttpServer

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, opened=True)
        self.server.app.connection_opened()
        if isinstance(self.connection, ssl.SSLSocket):
            try:
                self.connection.do_handshake()
            except OSError:  # ssl.SSLError included: the client refused our certificate, or hung up
                self.server.track(self.connection, opened=False)
                raise

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.track(self.connection, opened=False)

    def version_string(self) -> str:
        return self.server_version

    def log_message(self, format: str, *args: Any) -> None:
        # Silence the default per-request stderr lines: test output stays clean and nothing is echoed.
        return

    def do_GET(self) -> None:
        self._dispatch()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_GET

    def _dispatch(self) -> None:
        server = self.server
        if server.stop_event.is_set():
            self.close_connection = True
            return
        try:
            raw = self._read_body()
        except _BodyError as exc:
            # Unless the body was drained, its rest would be parsed as the next request: answer and close.
            self.close_connection = self.close_connection or exc.close
            exchange = server.app.begin(self.command, self.path, dict(self.headers.items()), b"")
            try:
                self._send(exc.reply, exchange)
            finally:
                exchange.finished()
            return
        exchange = server.app.begin(self.command, self.path, dict(self.headers.items()), raw)
        try:
            self._send(exchange.respond(server.stop_event), exchange)
        finally:
            exchange.finished()

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        text = self.headers.get("Content-Length")
        if text is None:
            return b""
        if not text.strip().isdigit():
            raise _BodyError(json_reply(400, {"type": "bad_request", "message": "invalid Content-Length"}))
        length = int(text)
        if length > MAX_BODY_BYTES:
            drain = length <= DRAIN_LIMIT_BYTES
            # Reading the body before answering lets the client finish sending and read the 413; closing
            # with unread data would make the kernel reset the connection under it.
            while drain and length > 0:
                chunk = self.rfile.read(min(length, 1 << 16))
                if not chunk:
                    break  # the client gave up sending
                length -= len(chunk)
            raise _BodyError(_too_large(), close=not drain)
        return self.rfile.read(length)

    def _read_chunked(self) -> bytes:
        data = bytearray()
        while True:
            size_text = self.rfile.readline(1024).split(b";")[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise _BodyError(
                    json_reply(400, {"type": "bad_request", "message": "malformed chunked body"})
                ) from None
            if size == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return bytes(data)
            if len(data) + size > MAX_BODY_BYTES:
                raise _BodyError(_too_large())
            data += self.rfile.read(size)
            self.rfile.readline(3)

    def _send(self, reply: Reply, exchange: Exchange) -> None:
        if reply.drop:
            self.close_connection = True
            return
        exchange.answering(reply.status)
        try:
            self.send_response(reply.status)
            if reply.content_type:
                self.send_header("Content-Type", reply.content_type)
            for name, value in reply.headers:
                self.send_header(name, value)
            if reply.chunks is not None:
                self.send_header("Transfer-Encoding", "chunked")
            else:
                self.send_header("Content-Length", str(len(reply.body)))
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD":
                self._write_body(reply)
            self.wfile.flush()
        except OSError:
            self.close_connection = True  # the client went away mid-reply

    def _write_body(self, reply: Reply) -> None:
        budget = reply.cut_after
        if reply.chunks is None:
            self.wfile.write(reply.body if budget is None else reply.body[:budget])
        else:
            for chunk in reply.chunks:
                if budget is not None:
                    chunk = chunk[:budget]
                    budget -= len(chunk)
                if chunk:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                if budget == 0 or self.server.stop_event.is_set():
                    break
            else:
                self.wfile.write(b"0\r\n\r\n")
                return
        if budget is not None or reply.chunks is not None:
            # Cut (or stopped) mid-body: the client must see the connection end before the body does.
            self.wfile.flush()
            self.close_connection = True
            _shutdown(self.connection)


def _too_large() -> Reply:
    return json_reply(
        413,
        {
            "type": "request_entity_too_large",
            "message": f"request body exceeds {MAX_BODY_BYTES} bytes",
            "max_bytes": MAX_BODY_BYTES,
        },
    )
