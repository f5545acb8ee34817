"""
The stall matrix: every wait ends. Servers on 127.0.0.1 (``stall_servers.py``: raw sockets, no mocks) stall a
request at each hop in turn, and every waiting path of the provider, in both transports, must end with a typed
:class:`~airflow_provider_devrev.exceptions.DevRevError` named for that hop within the timeout that bounds it
plus :data:`SLACK` seconds.

The stall kinds, the hop each stalls, and the timeout that must end it:

- ``never_accepts``: a listener whose accept queue is full (the SYN is dropped): connecting, ``timeout``.
- ``proxy_silent``: a proxy that accepts and never answers ``CONNECT``: connecting.
- ``proxy_tunnel``: a proxy that answers ``CONNECT`` 200, then the TLS handshake never completes: connecting.
- ``tls_silent``: an https:// server that accepts and never answers the ClientHello: connecting.
- ``no_headers``: an http:// server that reads the request and never answers: waiting for the answer,
  ``timeout``.
- ``body_cut``: the headers and half the body, then nothing: reading the body, ``timeout``.
- ``trickle``: a body that trickles in a byte a second for ever, each read well within ``timeout``: the
  whole request, ``request_timeout``.
- ``trickle_headers``: a header line that trickles in a byte a second for ever (``http.client`` reads 64 KiB
  of it before it gives up): the whole request, ``request_timeout``.
- ``proxy_trickle``: a proxy whose answer to ``CONNECT`` trickles in the same way: connecting, ``timeout``
  (which bounds a connection as a whole, not each of its reads).

The paths, sync (``requests``) and async (aiohttp) side by side: the hook's call and acall, the sensor's poke
and its deferrable trigger, the watcher (``DevRevNewSessionsTrigger``, which lists), listing
(``iter_sessions``/``aiter_sessions``) and the recording (``stream_session_recording``, which
``GetSessionRecordingOperator`` streams with, and ``aget_session_recording``; the operator itself, with
``output_path``, runs the trickle alone, in the test's own thread, since Airflow 2.11 refuses ``execute()``
from any other). Every path runs every stall kind: the kinds of one path run
concurrently (threads for the sync paths, one event loop for the async ones), each on its own Airflow
connection, so a path costs its slowest kind (``request_timeout`` plus a second) rather than their sum, and
the whole product stays within about 40 s of one worker. The hook calls go through a recording spy
(:func:`raised`) so that a path that swallows the error (the sensor's poke, both triggers) still shows which
one it met; the servers and transports are real.

The pool the async transport shares on an event loop is tested in ``test_pool_wedge.py``; the
``request_timeout`` extra's own rules at the end of this module.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import io
import json
import socket
import threading
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest

from airflow_provider_devrev.connection import HookOptions, settings_from_connection
from airflow_provider_devrev.exceptions import DevRevError, DevRevInvalidInputError, DevRevServerError
from airflow_provider_devrev.hooks.devrev import DevRevHook
from airflow_provider_devrev.listing import session_query
from airflow_provider_devrev.operators.recording import GetSessionRecordingOperator
from airflow_provider_devrev.sensors.devrev import DevRevSessionSensor
from airflow_provider_devrev.triggers.devrev import DevRevNewSessionsTrigger, DevRevSessionTrigger
from airflow_provider_devrev.triggers.session import session_from_event
from tests.network.stall_servers import Backlogged, StallServer

#: The connection's ``timeout`` extra: each read, and connecting (which waits at most this too).
TIMEOUT = 1.5
REQUEST_TIMEOUT = 3.5
#: What a stalled request may take beyond the timeout that bounds it.
SLACK = 2.0
#: How long the harness waits for a path that does not end (main's async proxy stall, a trickle) before
#: calling it a failure instead of hanging the suite.
GIVE_UP = REQUEST_TIMEOUT + SLACK + 3.0
TOKEN = "stall-matrix-token-5d1f0c"
VERSION_KEY = "stall@1"

#: The words each kind's error must say, and the timeout that must end it.
CONNECTING = ("timed out while connecting", TIMEOUT)
WHOLE_REQUEST = (f"did not complete within the {REQUEST_TIMEOUT:g} s request_timeout", REQUEST_TIMEOUT)
EXPECTED = {
    "never_accepts": CONNECTING,
    "proxy_silent": CONNECTING,
    "proxy_tunnel": CONNECTING,
    "tls_silent": CONNECTING,
    "no_headers": ("timed out waiting for the answer", TIMEOUT),
    "body_cut": ("timed out reading the body", TIMEOUT),
    "trickle": WHOLE_REQUEST,
    "trickle_headers": WHOLE_REQUEST,
    "proxy_trickle": CONNECTING,
}
KINDS = tuple(EXPECTED)


def conn_id(kind: str) -> str:
    return f"stall_{kind}"


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, Any]]:
    """One server per stalling behaviour, for the module; each kind's base URL and proxy (if any)."""
    backlogged = Backlogged().start()
    stalls = {mode: StallServer(mode).start() for mode in ("silent", "tunnel", "cut", "trickle", "trickle_headers")}
    # Bound, never listening: refuses at once (for the warm-up, see connections).
    refusing = socket.socket()
    refusing.bind(("127.0.0.1", 0))
    # Never reached: the proxy stalls before any tunnel to it exists.
    behind_proxy = "https://127.0.0.1:9"
    try:
        yield {
            "never_accepts": (backlogged.url, None),
            "proxy_silent": (behind_proxy, stalls["silent"].url),
            "proxy_tunnel": (behind_proxy, stalls["tunnel"].url),
            "tls_silent": (stalls["silent"].https_url, None),
            "no_headers": (stalls["silent"].url, None),
            "body_cut": (stalls["cut"].url, None),
            "trickle": (stalls["trickle"].url, None),
            "trickle_headers": (stalls["trickle_headers"].url, None),
            "proxy_trickle": (behind_proxy, stalls["trickle_headers"].url),
            WARM_UP: (f"http://127.0.0.1:{refusing.getsockname()[1]}", None),
        }
    finally:
        for server in stalls.values():
            server.stop()
        backlogged.stop()
        refusing.close()


def connection_json(host: str, *, proxy: str | None = None, **extra: Any) -> str:
    extra = {"timeout": TIMEOUT, "request_timeout": REQUEST_TIMEOUT, "max_retries": 0, **extra}
    if proxy:
        extra["proxy"] = proxy
    return json.dumps({"conn_type": "devrev", "host": host, "password": TOKEN, "extra": extra})


@pytest.fixture
def connections(servers, monkeypatch) -> None:
    """An Airflow connection per stall kind, ``stall_<kind>``."""
    for kind, (host, proxy) in servers.items():
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id(kind).upper()}", connection_json(host, proxy=proxy))
    # A process's first connection lookup imports and builds Airflow's secrets backends (2.5 s on Airflow 2.11):
    # done here, so that the paths' clocks measure their stalls and not that.
    assert DevRevHook(conn_id(KINDS[0])).settings.request_timeout == REQUEST_TIMEOUT
    warm_up()


#: The connection the warm-up uses: a port that refuses at once.
WARM_UP = "warm_up"


@functools.cache
def warm_up() -> None:
    """
    Run each path once, in this process, against a port that refuses at once: its first run imports and builds
    what it needs (0.5 s single-threaded for the recording stream; 1.5-2 s with the nine kinds' threads at once
    on a loaded machine, which overran the stall bound), and the clocks must measure the stalls, not that.
    """
    for sync_path in SYNC_PATHS.values():
        with contextlib.suppress(DevRevError):
            sync_path(WARM_UP, None)
    for async_path in (hook_acall, list_async, recording_acall):
        with contextlib.suppress(DevRevError):
            asyncio.run(async_path(WARM_UP))


@pytest.fixture
def raised(monkeypatch) -> dict[str, list[DevRevError]]:
    """
    Every DevRevError the hook's calls raised, by connection id: the real calls on real sockets, recorded on
    their way out, so that a path that handles the error itself (a sensor, a trigger) still shows which.
    """
    seen: dict[str, list[DevRevError]] = defaultdict(list)

    def spying_on(real: Callable[..., Any]) -> Callable[..., Any]:
        def spy(self: DevRevHook, *args: Any, **kwargs: Any) -> Any:
            try:
                return real(self, *args, **kwargs)
            except DevRevError as err:
                seen[self.devrev_conn_id].append(err)
                raise

        return spy

    monkeypatch.setattr(DevRevHook, "call", spying_on(DevRevHook.call))
    monkeypatch.setattr(DevRevHook, "call_streaming", spying_on(DevRevHook.call_streaming))
    real_acall = DevRevHook.acall

    async def aspy(self: DevRevHook, request: Any, **kwargs: Any) -> Any:
        try:
            return await real_acall(self, request, **kwargs)
        except DevRevError as err:
            seen[self.devrev_conn_id].append(err)
            raise

    monkeypatch.setattr(DevRevHook, "acall", aspy)
    return seen


# -- the paths: each runs one stall kind to its end and returns what it ended with --------------------------


def hook_call(kind: str, _: Any) -> Any:
    return DevRevHook(conn_id(kind)).get_session("android", "stalled", VERSION_KEY)


def sensor_poke(kind: str, _: Any) -> Any:
    sensor = DevRevSessionSensor(
        task_id=f"wait_{kind}", platform="android", session_id="stalled", version_key=VERSION_KEY,
        devrev_conn_id=conn_id(kind),
    )  # fmt: skip
    return sensor.poke({})


def list_sync(kind: str, _: Any) -> Any:
    return list(DevRevHook(conn_id(kind)).iter_sessions("android", VERSION_KEY))


def recording_stream(kind: str, _: Any) -> Any:
    hook, sink = DevRevHook(conn_id(kind)), io.BytesIO()
    return hook.stream_session_recording("stalled", VERSION_KEY, sink.write, recording_id="r1")


async def hook_acall(kind: str) -> Any:
    return await DevRevHook(conn_id(kind)).aget_session("android", "stalled", VERSION_KEY)


async def session_trigger(kind: str) -> Any:
    trigger = DevRevSessionTrigger(
        devrev_conn_id=conn_id(kind), platform="android", session_id="stalled", version_key=VERSION_KEY,
        poll_interval=60, end_time=time.time() + 0.5,  # the deadline passes during the stalled check
    )  # fmt: skip
    async for event in trigger.run():
        return event.payload
    raise AssertionError("the trigger ended without an event")


async def watcher(kind: str) -> Any:
    """The watcher's first poll, up to its first wait: it never ends, so a wait after the poll is its end."""
    waiting = asyncio.Event()

    class Watch(DevRevNewSessionsTrigger):
        @staticmethod
        async def sleep(seconds: float) -> None:
            waiting.set()
            await asyncio.Event().wait()  # parked until the test is done with it

    trigger = Watch(platform="android", version_key=VERSION_KEY, devrev_conn_id=conn_id(kind), poll_interval=60)
    polling = asyncio.ensure_future(anext(trigger.run()))
    try:
        await waiting.wait()
    finally:
        polling.cancel()
    return "waiting for the next poll"


async def list_async(kind: str) -> Any:
    return [s async for s in DevRevHook(conn_id(kind)).aiter_sessions(session_query("android", VERSION_KEY))]


async def recording_acall(kind: str) -> Any:
    return await DevRevHook(conn_id(kind)).aget_session_recording("stalled", VERSION_KEY, recording_id="r1")


SYNC_PATHS: dict[str, Callable[[str, Any], Any]] = {
    "hook.call": hook_call,
    "sensor.poke": sensor_poke,
    "iter_sessions": list_sync,
    "stream_session_recording": recording_stream,
}
ASYNC_PATHS: dict[str, Callable[[str], Awaitable[Any]]] = {
    "hook.acall": hook_acall,
    "session_trigger": session_trigger,
    "watcher": watcher,
    "aiter_sessions": list_async,
    "aget_session_recording": recording_acall,
}


class Outcome:
    """How one kind ended on one path: its result or exception, and when."""

    def __init__(self) -> None:
        self.result: Any = None
        self.error: BaseException | None = None
        self.seconds: float | None = None  # None: still waiting when the harness gave up


def run_sync(path: Callable[[str, Any], Any], tmp_path: Any) -> dict[str, Outcome]:
    """Every kind at once, each in a daemon thread (one that never ends is abandoned, not joined for ever)."""
    outcomes = {kind: Outcome() for kind in KINDS}

    def one(kind: str) -> None:
        started = time.monotonic()
        try:
            outcomes[kind].result = path(kind, tmp_path)
        except BaseException as err:
            outcomes[kind].error = err
        outcomes[kind].seconds = time.monotonic() - started

    threads = [threading.Thread(target=one, args=(kind,), daemon=True) for kind in KINDS]
    for thread in threads:
        thread.start()
    give_up = time.monotonic() + GIVE_UP
    for thread in threads:
        thread.join(timeout=max(0.0, give_up - time.monotonic()))
    return outcomes


def run_async(path: Callable[[str], Awaitable[Any]]) -> dict[str, Outcome]:
    """Every kind at once on one event loop, as a triggerer runs its triggers; each bounded by GIVE_UP."""
    outcomes = {kind: Outcome() for kind in KINDS}

    async def one(kind: str) -> None:
        started = time.monotonic()
        try:
            outcomes[kind].result = await asyncio.wait_for(path(kind), GIVE_UP)
        except TimeoutError:
            return  # still waiting: seconds stays None
        except BaseException as err:
            outcomes[kind].error = err
        outcomes[kind].seconds = time.monotonic() - started

    async def every_kind() -> None:
        await asyncio.gather(*(one(kind) for kind in KINDS))

    asyncio.run(every_kind())
    return outcomes


def ended_as_the_path_should(path: str, outcome: Outcome, error: DevRevError) -> str | None:
    """What is wrong with how ``path`` ended after its hook call raised ``error`` (``None``: nothing)."""
    if path == "sensor.poke":
        # A timeout is transient: the check fails, and the sensor checks again at the next poke.
        return None if outcome.result is False and outcome.error is None else f"poke gave {outcome.result!r}"
    if path == "session_trigger":
        event = outcome.result
        if not (isinstance(event, dict) and event.get("status") == "error"):
            return f"the trigger fired {event!r}, not an error event"
        try:
            session_from_event(event)
        except DevRevError:
            return None  # typed again on the worker
        return f"the event {event!r} is not an error on the worker"
    if path == "watcher":
        return None if outcome.error is None else f"the watcher ended with {outcome.error!r}"
    return None if outcome.error is error else f"raised {outcome.error!r} instead of the hook's error"


def check(
    path: str, outcomes: dict[str, Outcome], raised: dict[str, list[DevRevError]], servers: dict[str, Any]
) -> list[str]:
    """What went wrong, kind by kind (empty: nothing); prints each kind's duration."""
    problems = []
    for kind, outcome in outcomes.items():
        words, bound = EXPECTED[kind]
        print(f"{path:32} {kind:14} {'-' if outcome.seconds is None else f'{outcome.seconds:.2f} s'}")
        if outcome.seconds is None:
            problems.append(f"{kind}: still waiting after {GIVE_UP:g} s")
            continue
        if outcome.seconds > bound + SLACK:
            problems.append(f"{kind}: took {outcome.seconds:.2f} s, more than {bound:g} s + {SLACK:g} s")
        errors = raised.get(conn_id(kind), [])
        if len(errors) != 1:
            problems.append(f"{kind}: the hook raised {errors!r} ({outcome.error!r}), not one error")
            continue
        [error] = errors
        text, host = str(error), servers[kind][0]
        if not (isinstance(error, DevRevServerError) and error.status_code is None and error.error_type == "timeout"):
            problems.append(f"{kind}: {type(error).__name__} ({error.error_type}) is not a transient timeout: {text}")
        if words not in text or host not in text or TOKEN in text:
            problems.append(f"{kind}: the message does not say {words!r} naming {host} (and no token): {text}")
        wrong = ended_as_the_path_should(path, outcome, error)
        if wrong:
            problems.append(f"{kind}: {wrong}")
    return problems


@pytest.mark.parametrize("path", SYNC_PATHS)
def test_every_stall_ends_typed_and_in_time_sync(path, servers, connections, raised, tmp_path):
    outcomes = run_sync(SYNC_PATHS[path], tmp_path)

    assert check(path, outcomes, raised, servers) == []


@pytest.mark.parametrize("path", ASYNC_PATHS)
def test_every_stall_ends_typed_and_in_time_async(path, servers, connections, raised):
    outcomes = run_async(ASYNC_PATHS[path])

    assert check(path, outcomes, raised, servers) == []


def test_a_recording_trickling_to_output_path_ends_at_request_timeout_and_publishes_nothing(
    servers, connections, raised, tmp_path
):
    # The operator in this thread, one kind: Airflow 2.11's guard on execute() fails in any other thread.
    operator = GetSessionRecordingOperator(
        task_id="recording", session_id="stalled", version_key=VERSION_KEY, recording_id="r1",
        output_path=str(tmp_path / "out" / "recording.json"), devrev_conn_id=conn_id("trickle"),
    )  # fmt: skip
    outcome = Outcome()
    started = time.monotonic()
    with pytest.raises(DevRevError) as caught:
        operator.execute({})
    outcome.error, outcome.seconds = caught.value, time.monotonic() - started

    assert check("GetSessionRecordingOperator", {"trickle": outcome}, raised, servers) == []
    assert list((tmp_path / "out").iterdir()) == []  # nothing published, nothing half-written left behind


# -- the request_timeout extra -----------------------------------------------------------------------------


def settings(extra: dict[str, Any], **options: Any) -> Any:
    return settings_from_connection(
        "stalls", host="https://api.devrev.ai", port=None, password=TOKEN, extra=extra, options=HookOptions(**options)
    )


def test_request_timeout_defaults_to_300_s_and_the_hook_can_override_the_extra():
    assert settings({}).request_timeout == 300
    assert settings({"request_timeout": "12.5"}).request_timeout == 12.5
    assert settings({"request_timeout": 12.5}, request_timeout=4).request_timeout == 4
    assert DevRevHook(request_timeout=4).options == HookOptions(request_timeout=4)


@pytest.mark.parametrize("value", ["soon", -1, 0, True, float("inf")])
def test_a_bad_request_timeout_is_refused_naming_the_extra_and_the_connection(value):
    with pytest.raises(DevRevInvalidInputError) as caught:
        settings({"request_timeout": value})

    assert "extra request_timeout of connection 'stalls'" in str(caught.value)
    assert repr(value) in str(caught.value) or str(value) in str(caught.value)
