"""
The benchmark server: a minimal HTTP/1.1 server for DevRev's ``/observability.sessions.get``, run in its own process.

Why not the project's simulator: it is a ``ThreadingHTTPServer`` (a thread per connection, the whole of
``http.server`` per request), built to be faithful, not fast. At thousands of requests per second it would
be the bottleneck and every contender would measure the server. This one is an ``asyncio.Protocol`` on
uvloop (when installed) that parses just enough HTTP/1.1 for the three clients under test.

What it answers, contract-shaped (``airflow_provider_devrev/testing/contract/openapi.yaml``):

- ``GET /observability.sessions.get?platform=..&session_id=..&version_key=..``: 404 ``{"type": "not_found"}``
  until the session appears, then 200 ``{"session": {...}}`` (a ``mobile`` session). When it appears
  travels in the session id itself, ``<anything>-<milliseconds>``: that long after the *epoch*, a moment
  the benchmark sets through the control port once all its waits are running (before it, nothing with
  such a suffix appears). So the server needs no set-up per session; an id without a numeric suffix
  exists from the start.
- ``GET`` or ``POST /observability.sessions.list`` (for the export benchmark): the first ``limit`` (default 100)
  of the listing's sessions after ``cursor``, as ``{"sessions": [...], "next_cursor": ...}``. The listing is the
  same N sessions whatever the filters (the export's filters match them all) but the ``created_at`` range
  (inclusive; the exact listing asks each page by it), with the ids and ``created_at`` of
  :mod:`bench.simulator_host`'s seed; N is set through the control port (``list N``; 0 at start). The
  pages are cut from JSON encoded once, so a page costs the server a ``bytes.join``.
- ``GET /dev-users.self``: 200 ``{"dev_user": {...}}``.
- A missing or wrong ``Authorization: Bearer <token>``: 401 ``{"type": "unauthenticated"}``.

A second port speaks one text line per command (its connections are not counted): ``stats`` (accepted
connections, requests, statuses, distinct sessions asked for, open connections), ``reset`` (the counters,
and the epoch back to "never"), ``epoch`` (now; answers the unix time it set), ``advance SECONDS``,
which moves the server's clock forward for benchmarks that simulate time, and ``list N`` (the size of the
listing). ``stats`` also answers this process's CPU time.

Run: ``python -m bench.server --token TOKEN``; it prints ``{"port": P, "control_port": C}`` when ready.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import json
import math
import resource
import sys
import time
from collections import Counter
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, cast
from urllib.parse import parse_qsl

SESSIONS_GET = "/observability.sessions.get"
SESSIONS_LIST = "/observability.sessions.list"
DEFAULT_LIST_LIMIT = 100
DEV_USERS_SELF = "/dev-users.self"
_SID_PLACEHOLDER = "__SESSION_ID__"

#: A contract-valid ``mobile`` session of typical size (about 700 bytes of JSON).
SESSION_TEMPLATE: dict[str, Any] = {
    "type": "mobile",
    "platform": "android",
    "session_id": _SID_PLACEHOLDER,
    "created_at": "2026-11-20T10:15:30.123Z",
    "device_metadata": {
        "app_version": "5.2.0",
        "manufacturer": "Google",
        "model": "Pixel 8",
        "network_type": "wifi",
        "os_version": "14",
        "plug_sdk_version": "2.1.4",
        "screen_height": 2400,
        "screen_width": 1080,
        "sdk_version": "34",
    },
    "has_exception_occurred": True,
    "is_anr": False,
    "is_crash": True,
    "rage_tap": False,
    "session_duration_ms": 48213,
    "recording_ids": ["rec_0a1b2c3d4e5f"],
    "rev_org_id": "REV-AbCdEfGh",
    "rev_user_id": "REVU-K7M2P9QX",
}
# The 200 body around the session id, so answering costs two concatenations instead of a json.dumps.
_SESSION_HEAD, _SESSION_TAIL = (
    json.dumps({"session": SESSION_TEMPLATE}, separators=(",", ":"))
    .encode()
    .split(json.dumps(_SID_PLACEHOLDER).encode())
)
_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found"}


def response(status: int, body: bytes) -> bytes:
    """One complete HTTP/1.1 response with a JSON body."""
    head = (
        f"HTTP/1.1 {status} {_REASONS[status]}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode("ascii") + body


def error_body(error_type: str, message: str) -> bytes:
    """A DevRev error body."""
    return json.dumps({"type": error_type, "message": message}).encode()


# Built once: the not-found answer is by far the most frequent one.
_NOT_FOUND = response(404, error_body("not_found", "the session was not found"))
_UNAUTHENTICATED = response(401, error_body("unauthenticated", "the API token was not accepted"))
_BAD_REQUEST = response(400, error_body("missing_required_field", "platform, session_id and version_key are required"))
_DEV_USER = response(200, json.dumps({"dev_user": {"id": "DEVU-1", "display_name": "bench"}}).encode())


def appear_after(session_id: str) -> float | None:
    """Seconds after the epoch at which ``session_id`` appears: its ``-<milliseconds>`` suffix; ``None``: always."""
    suffix = session_id.rpartition("-")[2]
    return int(suffix) / 1000.0 if suffix.isdigit() else None


class Stats:
    """What the server saw since the last reset; read and reset through the control port."""

    def __init__(self) -> None:
        self.open_connections = 0
        self.reset()

    def reset(self) -> None:
        """Forget everything counted so far (open connections stay open, so their count stays)."""
        self.accepts = 0
        self.requests = 0
        self.max_open = self.open_connections
        self.statuses: Counter[int] = Counter()
        self.sessions_seen: set[str] = set()

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready snapshot."""
        return {
            "accepts": self.accepts,
            "requests": self.requests,
            "statuses": {str(k): v for k, v in self.statuses.items()},
            "sessions_seen": len(self.sessions_seen),
            "open_connections": self.open_connections,
            "max_open_connections": self.max_open,
            "cpu": time.process_time(),
        }


class Api:
    """Turns one parsed request into one response, counting it."""

    def __init__(self, token: str, stats: Stats) -> None:
        self.authorization = f"Bearer {token}"
        self.stats = stats
        self.clock_offset = 0.0
        self.epoch = math.inf
        #: The listing's sessions, each already JSON-encoded, and their created_at (ascending) as timestamps.
        self.listing: list[bytes] = []
        self.times: list[float] = []

    def set_listing(self, size: int) -> None:
        """Make the listing ``size`` sessions long (the seed of :mod:`bench.simulator_host`)."""
        from bench.simulator_host import seeded_created_at, session_id

        self.listing = []
        self.times = []
        for index in range(size):
            self.times.append(_timestamp(seeded_created_at(index)))
            session = dict(SESSION_TEMPLATE, session_id=session_id(index), created_at=seeded_created_at(index))
            self.listing.append(json.dumps(session, separators=(",", ":")).encode())

    def now(self) -> float:
        """The server's clock: wall time, plus whatever ``advance`` added."""
        return time.time() + self.clock_offset

    def answer(self, target: str, authorization: str | None, method: str = "GET", body: bytes = b"") -> bytes:
        """The response bytes for ``METHOD target`` (with ``body``: only the listing reads it)."""
        self.stats.requests += 1
        path, _, query = target.partition("?")
        if authorization != self.authorization:
            return self._count(401, _UNAUTHENTICATED)
        if path == SESSIONS_GET:
            return self._session(dict(parse_qsl(query)))
        if path == SESSIONS_LIST:
            try:
                params = json.loads(body) if method == "POST" else dict(parse_qsl(query))
            except ValueError:
                return self._count(400, _BAD_REQUEST)
            return self._list(params)
        if path == DEV_USERS_SELF:
            return self._count(200, _DEV_USER)
        return self._count(404, _NOT_FOUND)

    def _session(self, params: dict[str, str]) -> bytes:
        session_id = params.get("session_id", "")
        if not (session_id and params.get("platform") and params.get("version_key")):
            return self._count(400, _BAD_REQUEST)
        self.stats.sessions_seen.add(session_id)
        after = appear_after(session_id)
        if after is not None and self.now() < self.epoch + after:
            return self._count(404, _NOT_FOUND)
        body = _SESSION_HEAD + json.dumps(session_id).encode() + _SESSION_TAIL
        return self._count(200, response(200, body))

    def _list(self, params: Mapping[str, Any]) -> bytes:
        try:
            limit = int(params.get("limit") or DEFAULT_LIST_LIMIT)
            cursor = str(params.get("cursor") or "o0")
            low, high = 0, len(self.listing)
            created = params.get("created_at")
            if isinstance(created, dict):
                if created.get("after"):
                    low = bisect.bisect_left(self.times, _timestamp(created["after"]))
                if created.get("before"):
                    high = bisect.bisect_right(self.times, _timestamp(created["before"]))
            start = low + int(cursor.removeprefix("o"))
        except (TypeError, ValueError):
            return self._count(400, _BAD_REQUEST)
        end = min(start + limit, high)
        body = b'{"sessions":[' + b",".join(self.listing[start:end]) + b"]"
        if end < high:
            body += b',"next_cursor":"o%d"' % (end - low)
        return self._count(200, response(200, body + b"}"))

    def _count(self, status: int, payload: bytes) -> bytes:
        self.stats.statuses[status] += 1
        return payload


class HttpProtocol(asyncio.Protocol):
    """HTTP/1.1 with keep-alive; a request body is read and handed on (only the listing's POST uses one)."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)
        stats = self.api.stats
        stats.accepts += 1
        stats.open_connections += 1
        stats.max_open = max(stats.max_open, stats.open_connections)

    def connection_lost(self, exc: Exception | None) -> None:
        self.api.stats.open_connections -= 1

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        # Several requests may arrive in one read (pipelining); answer each complete one in order.
        while self.transport is not None and not self.transport.is_closing():
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            request_line, headers = parse_head(bytes(self.buffer[:end]))
            length = int(headers.get("content-length", "0") or 0)
            if len(self.buffer) < end + 4 + length:
                return  # wait for the rest of the body
            body = bytes(self.buffer[end + 4 : end + 4 + length]) if length else b""
            del self.buffer[: end + 4 + length]
            self._respond(request_line, headers, body)

    def _respond(self, request_line: str, headers: dict[str, str], body: bytes) -> None:
        assert self.transport is not None
        parts = request_line.split(" ")
        if len(parts) != 3:
            self.transport.close()
            return
        method, target, version = parts
        connection = headers.get("connection", "").lower()
        close = connection == "close" or (version == "HTTP/1.0" and connection != "keep-alive")
        payload = self.api.answer(target, headers.get("authorization"), method, body)
        if close:
            # Only the head changes: say so, then close once the bytes are out.
            payload = payload.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n", 1)
        self.transport.write(payload)
        if close:
            self.transport.close()


def parse_head(head: bytes) -> tuple[str, dict[str, str]]:
    """The request line and the headers (lower-cased names) of one request head."""
    lines = head.decode("latin-1").split("\r\n")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return lines[0], headers


async def control(api: Api, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Answer one command line of the control port with one JSON line."""
    command, _, argument = (await reader.readline()).decode().strip().partition(" ")
    reply: dict[str, Any]
    if command == "stats":
        reply = api.stats.as_dict()
    elif command == "reset":
        api.stats.reset()
        api.epoch = math.inf
        reply = {"ok": True}
    elif command == "epoch":
        api.epoch = api.now()
        reply = {"epoch": api.epoch}
    elif command == "advance":
        api.clock_offset += float(argument)
        reply = {"clock_offset": api.clock_offset}
    elif command == "list":
        api.set_listing(int(argument))
        reply = {"listing": len(api.listing)}
    else:
        reply = {"error": f"unknown command {command!r}"}
    writer.write(json.dumps(reply).encode() + b"\n")
    await writer.drain()
    writer.close()


async def serve(token: str, host: str, port: int, control_port: int) -> None:
    """Serve until killed; print the bound ports as one JSON line first."""
    loop = asyncio.get_running_loop()
    api = Api(token, Stats())
    # A wide backlog: a client that opens a connection per poll connects thousands at once.
    server = await loop.create_server(lambda: HttpProtocol(api), host, port, backlog=65535)
    controller = await asyncio.start_server(lambda r, w: control(api, r, w), host, control_port)
    ports = {
        "port": server.sockets[0].getsockname()[1],
        "control_port": controller.sockets[0].getsockname()[1],
        "uvloop": type(loop).__module__.startswith("uvloop"),
    }
    print(json.dumps(ports), flush=True)
    async with server, controller:
        await asyncio.gather(server.serve_forever(), controller.serve_forever())


def raise_file_limit() -> None:
    """Allow as many open sockets as the hard limit does: one per connection is the point of some contenders."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def main(argv: list[str] | None = None) -> None:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--token", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--control-port", type=int, default=0)
    parser.add_argument("--no-uvloop", action="store_true", help="use asyncio's default loop")
    args = parser.parse_args(argv)
    raise_file_limit()
    try:
        with asyncio.Runner(loop_factory=None if args.no_uvloop else fast_loop_factory()) as runner:
            runner.run(serve(args.token, args.host, args.port, args.control_port))
    except KeyboardInterrupt:
        sys.exit(0)


def fast_loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop when it is installed (it is, with Airflow): it keeps the server out of the measurements."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


if __name__ == "__main__":
    main()


def _timestamp(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
