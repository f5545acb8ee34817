"""
Every way of not reaching DevRev is named for what it is, with the host, in the same words in both transports
(issue 26, finding 5); and a sensor that never reached DevRev says so at its timeout, which it does not overshoot.

Real servers on 127.0.0.1: a closed port, a plain-HTTP server behind an ``https://`` URL, raw sockets that reset
or close the connection after reading the request. The one name that is not on loopback, ``devrev.invalid``, is
reserved (RFC 2606): no resolver answers it, so it needs no network either.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import struct
import threading
import time
from collections.abc import Callable

import pytest
from airflow.providers.common.compat.sdk import AirflowSensorTimeout

from airflow_provider_devrev.exceptions import DevRevServerError
from airflow_provider_devrev.hooks.devrev import DevRevHook
from airflow_provider_devrev.policy import CheckHistory
from airflow_provider_devrev.sensors.devrev import DevRevSessionSensor
from airflow_provider_devrev.triggers.devrev import DevRevSessionTrigger

CONN_ID = "devrev_unreachable"
VERSION = "app@1"


#: Answers that are not valid HTTP: what a misrouted port or a broken middlebox sends.
NOT_HTTP = {
    "status line": b"HELLO WORLD\r\n\r\n",
    "header too long": b"HTTP/1.1 200 OK\r\nX: " + b"a" * 70000 + b"\r\n\r\n",
    "chunk size": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
}


class RawServer:
    """
    A TCP server on 127.0.0.1 that reads one request, then ends the connection as ``ending`` says: ``reset``
    (RST), ``close`` (FIN), or ``http`` (a plain-HTTP answer to whatever came first, a TLS hello included).
    """

    def __init__(self, ending: str) -> None:
        self.ending = ending
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> RawServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        # shutdown() wakes the thread blocked in accept(), which close() alone does not on Linux.
        self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self._thread.join(timeout=5)
        assert not self._thread.is_alive()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return  # closed by __exit__
            with conn:
                request = conn.recv(65536)
                while self.ending != "http" and b"\r\n\r\n" not in request:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    request += chunk
                if self.ending == "reset":
                    # SO_LINGER with a zero timeout: close() sends RST instead of FIN.
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                elif self.ending == "http":
                    conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                elif self.ending in NOT_HTTP:
                    conn.sendall(NOT_HTTP[self.ending])
                else:
                    # A clean close (FIN) once the whole request is read: closing with unread bytes would reset.
                    conn.shutdown(socket.SHUT_WR)


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def reach(monkeypatch) -> Callable[..., tuple[DevRevServerError, DevRevServerError]]:
    """``reach(host, **extra)`` points the connection at ``host`` (no retries) and returns both transports' errors."""

    def errors(host: str, **extra) -> tuple[DevRevServerError, DevRevServerError]:
        extra = {"allow_insecure_http": True, "max_retries": 0, **extra}
        monkeypatch.setenv(
            f"AIRFLOW_CONN_{CONN_ID.upper()}",
            json.dumps({"conn_type": "devrev", "host": host, "password": "tok-unreachable-1", "extra": extra}),
        )
        with pytest.raises(DevRevServerError) as sync_error:
            DevRevHook(CONN_ID).get_session("android", "s-1", VERSION)

        async def async_call() -> None:
            await DevRevHook(CONN_ID).aget_session("android", "s-1", VERSION)

        with pytest.raises(DevRevServerError) as async_error:
            asyncio.run(async_call())
        return sync_error.value, async_error.value

    return errors


def assert_same_in_both(errors: tuple[DevRevServerError, DevRevServerError], phrase: str) -> None:
    sync_error, async_error = errors
    assert phrase in str(sync_error)
    assert str(sync_error) == str(async_error)
    assert sync_error.status_code is None
    assert sync_error.error_type == "connection_error"
    assert "connection refused, reset or closed before an answer" not in str(sync_error)  # the old catch-all


def test_a_name_that_does_not_resolve_says_so(reach):
    assert_same_in_both(reach("https://devrev.invalid"), "could not resolve the host devrev.invalid (DNS)")


def test_a_closed_port_is_connection_refused_with_host_and_port(reach):
    port = closed_port()
    assert_same_in_both(reach(f"http://127.0.0.1:{port}"), f"connection refused by 127.0.0.1:{port}")


def test_https_to_a_plain_http_server_asks_whether_it_is_an_http_url(reach):
    with RawServer("http") as server:
        # A host without a scheme means https://; this one speaks plain HTTP.
        errors = reach(f"127.0.0.1:{server.port}")
    assert_same_in_both(errors, "TLS handshake failed (WRONG_VERSION_NUMBER): is this an http:// URL?")
    assert f"https://127.0.0.1:{server.port}" in str(errors[0])


def test_a_reset_connection_is_named_a_reset(reach):
    with RawServer("reset") as server:
        assert_same_in_both(reach(f"http://127.0.0.1:{server.port}"), "connection reset by 127.0.0.1")


def test_a_connection_closed_before_the_answer_says_so(reach):
    with RawServer("close") as server:
        errors = reach(f"http://127.0.0.1:{server.port}")
    assert_same_in_both(errors, "127.0.0.1 closed the connection before answering")


@pytest.mark.parametrize("answer", sorted(NOT_HTTP))
def test_an_answer_that_is_not_http_says_so_and_chains_nothing_holding_the_token(reach, answer):
    with RawServer(answer) as server:
        errors = reach(f"http://127.0.0.1:{server.port}")
    assert_same_in_both(errors, "127.0.0.1 answered something that is not valid HTTP")
    # aiohttp's parser error holds the request's headers (Authorization among them) in its repr.
    for error in errors:
        link: BaseException | None = error
        while link is not None:
            assert "tok-unreachable-1" not in repr(link) + repr(getattr(link, "args", ""))
            link = link.__cause__ or link.__context__


def test_a_proxy_that_cannot_be_reached_is_named_with_its_host(reach):
    proxy_port = closed_port()
    sync_error, async_error = reach("https://api.devrev.ai", proxy=f"http://127.0.0.1:{proxy_port}")
    expected = (
        f"the proxy http://127.0.0.1:{proxy_port} (extra proxy) could not be reached: "
        f"connection refused by 127.0.0.1:{proxy_port}"
    )
    assert expected in str(sync_error)
    assert str(sync_error) == str(async_error)


def test_retry_warnings_name_the_host_and_what_failed(reach, monkeypatch, caplog, capsys):
    port = closed_port()
    monkeypatch.setattr(time, "sleep", lambda seconds: None)
    with caplog.at_level(logging.WARNING):
        reach(f"http://127.0.0.1:{port}", max_retries=1)
    # Airflow 2.11 logs through logging (caplog), Airflow 3 through structlog (printed).
    logged = caplog.text + capsys.readouterr().out
    line = f"DevRev GET /observability.sessions.get to http://127.0.0.1:{port} failed (no response: connection refused"
    assert logged.count(line) >= 2, logged  # the sync retry and the async one


# -- a sensor that never reached DevRev --------------------------------------------------------------------


def test_history_blames_the_network_only_when_the_last_checks_all_got_no_answer():
    not_found, unreached = None, DevRevServerError("x failed: connection refused", error_type="connection_error")
    history = CheckHistory()
    for error in (unreached, unreached, not_found, unreached, unreached):
        history.note(error)
    assert not history.never_reached()  # a 404 among the last three: DevRev answered
    assert "did not appear" in history.timeout_message("s-1")
    history.note(unreached)
    assert history.never_reached()
    short = CheckHistory()
    short.note(unreached)  # fewer than three checks, all unreached
    assert short.never_reached()
    assert "without reaching DevRev" in short.timeout_message("s-1")


SENSOR_TIMEOUT = 3.0
#: A check that fails to connect ends within the connect timeout; one more may start just before the deadline.
ONE_REQUEST = 2.0


def point_at_closed_port(monkeypatch) -> int:
    port = closed_port()
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{CONN_ID.upper()}",
        json.dumps(
            {
                "conn_type": "devrev",
                "host": f"http://127.0.0.1:{port}",
                "password": "tok-unreachable-1",
                "extra": {"allow_insecure_http": True, "timeout": ONE_REQUEST},
            }
        ),
    )
    return port


def test_poke_mode_says_it_never_reached_devrev_and_stops_retrying_at_its_timeout(monkeypatch):
    port = point_at_closed_port(monkeypatch)
    # Five retries with backoff (1 + 2 + 4 + 8 + 16 s) would take 31 s per check: the deadline must cut them.
    sensor = DevRevSessionSensor(
        task_id="wait",
        devrev_conn_id=CONN_ID,
        platform="android",
        session_id="s-1",
        version_key=VERSION,
        poke_interval=1,
        timeout=SENSOR_TIMEOUT,
        max_retries=5,
        mode="poke",
    )
    started = time.monotonic()
    with pytest.raises(AirflowSensorTimeout) as caught:
        sensor.execute({})
    elapsed = time.monotonic() - started

    assert elapsed <= SENSOR_TIMEOUT + ONE_REQUEST + 2
    assert "timed out without reaching DevRev" in str(caught.value)
    assert f"connection refused by 127.0.0.1:{port}" in str(caught.value)
    assert "did not appear" not in str(caught.value)


def test_deferrable_mode_says_the_same_and_ends_as_soon(monkeypatch):
    port = point_at_closed_port(monkeypatch)
    trigger = DevRevSessionTrigger(
        devrev_conn_id=CONN_ID,
        platform="android",
        session_id="s-1",
        version_key=VERSION,
        poll_interval=1,
        end_time=time.time() + SENSOR_TIMEOUT,
        hook_options={"max_retries": 5},
    )

    async def first_event() -> dict:
        return await asyncio.wait_for(anext(aiter(trigger.run())), SENSOR_TIMEOUT + ONE_REQUEST + 10)

    started = time.monotonic()
    event = asyncio.run(first_event()).payload
    elapsed = time.monotonic() - started

    assert elapsed <= SENSOR_TIMEOUT + ONE_REQUEST + 2
    assert event["error_type"] == "sensor_timeout"
    assert "timed out without reaching DevRev" in event["message"]
    assert f"connection refused by 127.0.0.1:{port}" in event["message"]
