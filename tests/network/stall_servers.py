"""
Servers on 127.0.0.1 that stall at one hop of a request each, for the stall matrix
(``tests/network/test_stall_matrix.py``): raw sockets, one thread each, started and stopped by a fixture.

- :class:`Backlogged`: a listening socket whose accept queue is full and which never accepts: a client's SYN
  is dropped, so its TCP connect never completes.
- :class:`StallServer`: accepts every connection and reads what comes, then, by its ``mode``:

  - ``silent``: never writes a byte. As a proxy, it never answers ``CONNECT``; as an https:// server, it never
    answers the TLS ClientHello; as an http:// server, it never sends the headers.
  - ``tunnel``: a proxy that answers ``CONNECT`` with 200 and then goes silent, so the TLS handshake
    through the tunnel never completes.
  - ``cut``: sends the headers and half the body its ``Content-Length`` announces, then nothing.
  - ``trickle``: sends the headers, then one byte of body a second, without end.
  - ``trickle_headers``: sends a status line, then one byte a second of a header line that never ends. As a
    proxy, that is its answer to ``CONNECT``.

A stalled connection is held until the client gives up or the server stops; :meth:`StallServer.stop` closes
them all.
"""

from __future__ import annotations

import contextlib
import errno
import selectors
import socket
import threading
import time

#: The body every answering mode starts: JSON that is valid as far as it goes, so that a client checking
#: the JSON as it arrives (the recording stream) keeps reading rather than failing on garbage.
BODY_PREFIX = b'{"recording": "mobile_recording", "session": {"session_id": "stalled", "padding": "'
#: The Content-Length every answering mode announces (it never sends all of it).
CONTENT_LENGTH = 100_000
#: Seconds between two bytes of a trickled body.
TRICKLE_EVERY = 1.0
MODES = ("silent", "tunnel", "cut", "trickle", "trickle_headers")


class StallServer:
    """
    A loopback server that stalls as its ``mode`` says (see the module's docstring).

    :param mode: ``silent``, ``tunnel``, ``cut`` or ``trickle``.
    :param host: The loopback address to bind.
    """

    def __init__(self, mode: str, host: str = "127.0.0.1") -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
        self.mode = mode
        self._listener = socket.create_server((host, 0), backlog=512)
        self._listener.setblocking(False)
        self.host, self.port = self._listener.getsockname()[:2]
        self._selector = selectors.DefaultSelector()
        self._wake_reader, self._wake_writer = socket.socketpair()
        self._clients: dict[socket.socket, bytearray] = {}
        self._trickling: dict[socket.socket, float] = {}
        self._lock = threading.Lock()
        self._accepted = 0
        self._stopping = False
        self._thread = threading.Thread(target=self._serve, name=f"stall-{mode}-{self.port}", daemon=True)

    @property
    def url(self) -> str:
        """``http://host:port``: the server as an http:// base URL or as a proxy."""
        return f"http://{self.host}:{self.port}"

    @property
    def https_url(self) -> str:
        """``https://host:port``: the server as an https:// base URL (the TLS handshake never completes)."""
        return f"https://{self.host}:{self.port}"

    @property
    def accepted(self) -> int:
        """Connections accepted so far."""
        with self._lock:
            return self._accepted

    @property
    def open_connections(self) -> int:
        """Connections accepted and not yet closed by the client."""
        with self._lock:
            return len(self._clients)

    def start(self) -> StallServer:
        self._selector.register(self._listener, selectors.EVENT_READ, "accept")
        self._selector.register(self._wake_reader, selectors.EVENT_READ, "wake")
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping = True
        self._wake_writer.send(b"x")
        self._thread.join(timeout=10)
        for client in list(self._clients):
            client.close()
        self._clients.clear()
        self._listener.close()
        self._wake_reader.close()
        self._wake_writer.close()
        self._selector.close()

    def __enter__(self) -> StallServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _serve(self) -> None:
        while not self._stopping:
            now = time.monotonic()
            due = min(self._trickling.values(), default=now + 60.0)
            for key, _ in self._selector.select(timeout=max(0.0, due - now)):
                if key.data == "accept":
                    self._accept()
                elif key.data == "client":
                    self._read(key.fileobj)  # type: ignore[arg-type]
            now = time.monotonic()
            for client, at in list(self._trickling.items()):
                if at <= now:
                    self._trickling[client] = now + TRICKLE_EVERY
                    self._send(client, b"a")

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except BlockingIOError:
                return
            client.setblocking(False)
            self._selector.register(client, selectors.EVENT_READ, "client")
            with self._lock:
                self._clients[client] = bytearray()
                self._accepted += 1

    def _read(self, client: socket.socket) -> None:
        try:
            data = client.recv(65536)
        except OSError:
            data = b""
        if not data:
            self._close(client)
            return
        received = self._clients.get(client)
        if received is None or self.mode == "silent":
            return
        if b"\r\n\r\n" not in received:
            received += data
            if b"\r\n\r\n" in received:
                self._answer(client)

    def _answer(self, client: socket.socket) -> None:
        if self.mode == "tunnel":
            self._send(client, b"HTTP/1.1 200 Connection established\r\n\r\n")
            return
        head = (
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {CONTENT_LENGTH}\r\n\r\n".encode()
        )
        if self.mode == "cut":
            half = BODY_PREFIX + b"a" * (CONTENT_LENGTH // 2 - len(BODY_PREFIX))
            self._send(client, head + half)
            return
        if self.mode == "trickle_headers":
            self._send(client, b"HTTP/1.1 200 OK\r\nX-Stall: ")
        else:  # trickle
            self._send(client, head + BODY_PREFIX)
        self._trickling[client] = time.monotonic() + TRICKLE_EVERY

    def _send(self, client: socket.socket, data: bytes) -> None:
        # Small writes to a client that reads: the socket buffer takes them whole.
        try:
            client.sendall(data)
        except OSError:
            self._close(client)

    def _close(self, client: socket.socket) -> None:
        self._trickling.pop(client, None)
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(client)
        with self._lock:
            self._clients.pop(client, None)
        client.close()


class Backlogged:
    """
    A listening socket on 127.0.0.1 that never accepts, its accept queue filled by connections of its own:
    Linux drops a SYN to a listener whose queue is full, so a client's connect never completes.
    """

    #: How long a filler's connect may take before the queue counts as full: a loopback handshake that the
    #: kernel accepts completes in microseconds.
    FULL_AFTER = 0.3
    MAX_FILLERS = 64

    def __init__(self) -> None:
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(0)
        self.host, self.port = self._listener.getsockname()[:2]
        self._fillers: list[socket.socket] = []

    @property
    def url(self) -> str:
        """``http://127.0.0.1:port``."""
        return f"http://{self.host}:{self.port}"

    def start(self) -> Backlogged:
        while len(self._fillers) < self.MAX_FILLERS:
            filler = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            filler.setblocking(False)
            code = filler.connect_ex((self.host, self.port))
            if code not in (0, errno.EINPROGRESS):
                filler.close()
                raise OSError(code, f"could not connect a filler to the backlogged listener: {errno.errorcode[code]}")
            selector = selectors.DefaultSelector()
            selector.register(filler, selectors.EVENT_WRITE)
            connected = bool(selector.select(timeout=self.FULL_AFTER))
            selector.close()
            if not connected:
                filler.close()  # its SYN was dropped: the queue is full
                return self
            self._fillers.append(filler)
        self.stop()
        raise RuntimeError(f"the accept queue of a listen(0) socket took {self.MAX_FILLERS} connections")

    def stop(self) -> None:
        for filler in self._fillers:
            filler.close()
        self._fillers.clear()
        self._listener.close()

    def __enter__(self) -> Backlogged:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
