"""
The sync transport's request watch (``hooks/_request_watch.py``) on real sockets: it cuts the connection of a
request still running at its deadline or still connecting after the connect timeout, and never a connection
once its request is over, whenever its timer runs. The whole path (a server trickling headers, a proxy
trickling its answer to ``CONNECT``) is in ``tests/network/test_stall_matrix.py``.

The watchdog runs for real; where a test needs it to have acted at some time, it waits for an action of its own
scheduled at that time, which the watchdog runs after every action due before it (a wait with a bound, never
a sleep).
"""

from __future__ import annotations

import io
import json
import logging
import multiprocessing
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from airflow_provider_devrev.hooks import _request_watch
from airflow_provider_devrev.hooks._request_watch import RequestWatch, Watchdog, current_watch
from airflow_provider_devrev.hooks.devrev import DevRevHook
from tests.fakes import FakeSleep

#: The longest a test waits for a read the watch must end: far beyond the deadlines used here.
BOUND = 10.0


@dataclass
class Connection:
    """What the watch uses of urllib3's connection: its socket."""

    sock: socket.socket | None


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    ours, theirs = socket.socketpair()
    ours.settimeout(BOUND)
    yield ours, theirs
    ours.close()
    theirs.close()


def watchdog_reached(at: float) -> None:
    """Return once the watchdog has run every action due by ``at``."""
    reached = threading.Event()
    _request_watch.WATCHDOG.schedule(at, reached.set)
    assert reached.wait(BOUND)


def still_open(ours: socket.socket, theirs: socket.socket) -> bool:
    theirs.sendall(b"x")
    return ours.recv(1) == b"x"


def test_a_read_blocked_at_the_deadline_ends_at_once(pair):
    ours, _theirs = pair
    with RequestWatch(time.monotonic() + 0.2, connect_timeout=BOUND) as watch:
        watch.attach(Connection(ours))
        started = time.monotonic()
        # The peer never writes: only the watch can end this read before BOUND.
        assert ours.recv(1) == b""
        waited = time.monotonic() - started

    assert watch.cut == "request"
    assert watch.expired()
    assert waited < BOUND / 2


def test_a_connection_taken_after_the_deadline_is_cut_as_it_is_taken(pair):
    ours, _theirs = pair
    with RequestWatch(time.monotonic() - 1, connect_timeout=BOUND) as watch:
        watchdog_reached(watch.deadline)  # the deadline passed with no connection to cut
        watch.attach(Connection(ours))
        assert ours.recv(1) == b""

    assert watch.cut == "request"


def test_a_connection_without_a_socket_yet_is_cut_when_it_gets_one(pair):
    ours, _theirs = pair
    connection = Connection(None)
    with RequestWatch(time.monotonic() - 1, connect_timeout=BOUND) as watch:
        watch.attach(connection)
        watchdog_reached(watch.deadline)  # the deadline passed while the TCP connect was under way
        connection.sock = ours
        assert ours.recv(1) == b""

    assert watch.cut == "request"


def test_a_connect_longer_than_the_connect_timeout_is_cut_and_named_so(pair):
    ours, _theirs = pair
    connection = Connection(ours)
    with RequestWatch(time.monotonic() + BOUND, connect_timeout=0.2) as watch:
        watch.attach(connection)
        with watch.connecting(connection):
            # A proxy that never finishes its answer to CONNECT.
            assert ours.recv(1) == b""

    assert watch.cut == "connect"


def test_a_connect_done_in_time_is_never_cut_whenever_its_timer_runs(pair):
    ours, theirs = pair
    connection = Connection(ours)
    with RequestWatch(time.monotonic() + BOUND, connect_timeout=BOUND) as watch:
        watch.attach(connection)
        with watch.connecting(connection):
            pass
        # The connect's time coming late, after the connect ended: the connection is the request's now.
        watch._fire_connect(connection)
        assert still_open(ours, theirs)

    assert watch.cut is None


@dataclass
class TLSLayer:
    """A TLS layer that is not ``ssl.SSLSocket`` (urllib3's ``SSLTransport``, pyOpenSSL's ``WrappedSocket``):
    only its ``socket`` attribute is a socket."""

    socket: socket.socket

    def fileno(self) -> int:
        return self.socket.fileno()


def test_a_read_through_a_tls_layer_of_urllib3s_is_cut_at_the_deadline(pair):
    ours, _theirs = pair
    with RequestWatch(time.monotonic() + 0.2, connect_timeout=BOUND) as watch:
        watch.attach(Connection(TLSLayer(ours)))  # type: ignore[arg-type]
        started = time.monotonic()
        assert ours.recv(1) == b""
        waited = time.monotonic() - started

    assert watch.cut == "request"
    assert waited < BOUND / 2


def test_an_action_that_fails_leaves_the_watchdog_running_the_others(caplog):
    watchdog, ran = Watchdog(), threading.Event()
    now = time.monotonic()

    def fails() -> None:
        raise TypeError("an action's own failure")

    watchdog.schedule(now + 0.05, fails)
    # Scheduled before the failure and due after it: only the running thread can run it, nothing wakes it anew.
    watchdog.schedule(now + 0.3, ran.set)

    with caplog.at_level(logging.ERROR, logger=_request_watch.__name__):
        assert ran.wait(BOUND)
    assert "an action failed" in caplog.text
    assert "an action's own failure" in caplog.text


VERSION = "com.example.app@1.0.0"


def test_a_cut_landing_on_a_connection_back_in_the_pool_costs_the_next_request_only_a_new_connection(
    devrev_simulator,
):
    sim = devrev_simulator
    session = sim.make_session("mobile", platform="android", is_crash=True, is_anr=False, recording_ids=["r1"])
    session = sim.add_session(session, version_key=VERSION)
    hook = DevRevHook(sleep=FakeSleep(), max_retries=0, request_timeout=1.0)
    hook.get_session("android", session["session_id"], VERSION)
    opened = sim.connections_opened
    sink, cut = io.BytesIO(), []

    def write(chunk: bytes) -> None:
        # The whole body is read, so urllib3 has put the connection back in the pool: the watch, still open
        # until the call returns, cuts that pooled connection at its deadline.
        sink.write(chunk)
        watch = current_watch()
        assert watch is not None
        watchdog_reached(watch.deadline)
        cut.append(watch.cut)

    streamed = hook.stream_session_recording(session["session_id"], VERSION, write, recording_id="r1")

    assert cut == ["request"]
    assert streamed.bytes == len(sink.getvalue())
    assert json.loads(sink.getvalue())["recording"]
    # urllib3 finds the pooled connection closed (is_connection_dropped) and opens another, rather than failing.
    assert hook.get_session("android", session["session_id"], VERSION)["session_id"] == session["session_id"]
    assert sim.connections_opened == opened + 1


def test_a_request_over_is_never_cut_whenever_its_timer_runs(pair):
    ours, theirs = pair
    with RequestWatch(time.monotonic() + BOUND, connect_timeout=BOUND) as watch:
        watch.attach(Connection(ours))
    # Its deadline's action running late, after the block, as the connection serves the next request.
    watch._fire()

    assert still_open(ours, theirs)
    assert watch.cut is None


def test_a_watch_leaves_nothing_scheduled_and_no_watch_behind(pair):
    ours, theirs = pair
    for _ in range(20):
        with RequestWatch(time.monotonic() + BOUND, connect_timeout=BOUND) as watch:
            assert current_watch() is watch
            connection = Connection(ours)
            watch.attach(connection)
            with watch.connecting(connection):
                pass

    assert current_watch() is None
    assert _request_watch.WATCHDOG._due == {}
    assert still_open(ours, theirs)


def test_the_watchdog_runs_actions_in_time_order_whatever_order_they_came_in():
    watchdog, ran, last = Watchdog(), [], threading.Event()
    now = time.monotonic()
    for name, at in [("c", now + 0.3), ("a", now + 0.1), ("b", now + 0.2), ("later", now + 0.3)]:
        watchdog.schedule(at, lambda name=name: ran.append(name))
    cancelled = watchdog.schedule(now + 0.15, lambda: ran.append("cancelled"))
    watchdog.schedule(now + 0.3, last.set)
    watchdog.cancel(cancelled)

    assert last.wait(BOUND)
    assert ran == ["a", "b", "c", "later"]


def test_a_watch_belongs_to_its_thread():
    seen = []
    with RequestWatch(time.monotonic() + BOUND, connect_timeout=BOUND):
        other = threading.Thread(target=lambda: seen.append(current_watch()))
        other.start()
        other.join(BOUND)

    assert seen == [None]


def cut_in_a_forked_child(result: Any) -> None:
    ours, _peer = socket.socketpair()  # the peer kept open, silent: only the watch can end the read
    ours.settimeout(BOUND)
    with RequestWatch(time.monotonic() + 0.2, connect_timeout=BOUND) as watch:
        watch.attach(Connection(ours))
        result.put((ours.recv(1), watch.cut))


# Python warns of exactly what this test makes: a fork with threads running, as a prefork worker's is.
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded, use of fork:DeprecationWarning")
def test_a_request_in_a_forked_child_is_cut_at_its_deadline():
    # The parent's watchdog thread is running: a child forked now (a Celery prefork worker's task) has no
    # such thread, and must not wait for it.
    watchdog_reached(time.monotonic())
    context = multiprocessing.get_context("fork")
    result = context.Queue()
    child = context.Process(target=cut_in_a_forked_child, args=(result,))
    child.start()
    try:
        assert result.get(timeout=BOUND) == (b"", "request")
    finally:
        child.join(BOUND)
    assert child.exitcode == 0
