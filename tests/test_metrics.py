"""
The provider's metrics, read back from a real StatsD listener: a UDP socket on loopback that this test owns,
with Airflow's own ``[metrics] statsd_*`` settings pointing at it (Airflow's StatsD client does the sending).
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
import warnings
from datetime import UTC, datetime, timedelta

import pytest

from airflow_provider_devrev import metrics
from airflow_provider_devrev.hooks.devrev import DevRevHook
from airflow_provider_devrev.operators.devrev import ListSessionsOperator
from airflow_provider_devrev.progress import PROGRESS_EVERY, Progress

VERSION = "com.example.app@1.0.0"
LIST = "/observability.sessions.list"
DAY = datetime(2026, 3, 1, tzinfo=UTC)
#: Real seconds to wait for the datagrams already sent (loopback: they are there at once).
RECEIVE_DEADLINE = 10.0
#: The counter each read sends last, to know every earlier datagram has arrived.
MARK = "test.mark"

pytestmark = pytest.mark.devrev_simulator(seed_data=False, page_size=2)


@pytest.fixture
def statsd(monkeypatch):
    """A UDP socket on 127.0.0.1, and Airflow's metrics configured to send to it; yields a reader."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    listener.bind(("127.0.0.1", 0))
    listener.settimeout(0.2)
    monkeypatch.setenv("AIRFLOW__METRICS__STATSD_ON", "True")
    monkeypatch.setenv("AIRFLOW__METRICS__STATSD_HOST", "127.0.0.1")
    monkeypatch.setenv("AIRFLOW__METRICS__STATSD_PORT", str(listener.getsockname()[1]))
    monkeypatch.setenv("AIRFLOW__METRICS__STATSD_PREFIX", "airflow")
    # The provider reads the switches once per process, as Airflow does: read them again under this config.
    metrics._enabled.cache_clear()
    reset = _use_configured_backend(monkeypatch)
    received: list[str] = []

    marks = 0

    def read_until(expected: dict[str, int]) -> dict[str, int]:
        """
        The counters received, once they reach ``expected`` and a mark sent after them has arrived (or the
        deadline passes). The mark goes through the same client and socket after everything the test caused,
        so a count sent once too often (a double count) has arrived by then and makes the totals too high.
        """
        nonlocal marks
        marks += 1
        metrics.incr(MARK)
        wanted = {**expected, f"devrev.{MARK}": marks}
        deadline = time.monotonic() + RECEIVE_DEADLINE
        while True:
            totals = counters(received)
            if all(totals.get(f"airflow.{name}", 0) >= count for name, count in wanted.items()):
                totals.pop(f"airflow.devrev.{MARK}")
                return totals
            if time.monotonic() > deadline:
                return totals
            try:
                data = listener.recv(65535)
            except TimeoutError:
                continue
            received.extend(data.decode().splitlines())

    try:
        yield read_until
    finally:
        listener.close()
        reset()
        metrics._enabled.cache_clear()


def _use_configured_backend(monkeypatch):
    """Make Airflow's metrics object build its backend from the settings above, as its processes do at start."""
    try:
        from airflow.observability.metrics import stats_utils
        from airflow.sdk.observability import stats
    except ImportError:  # Airflow 2.11 to 3.2: a metaclass builds the client on first use
        from airflow.stats import Stats

        try:
            from airflow.metrics import statsd_logger
        except ImportError:
            from airflow.observability.metrics import statsd_logger  # type: ignore[no-redef]
        monkeypatch.setattr(type(Stats), "factory", statsd_logger.get_statsd_logger)
        # The metaclass caches the client on Stats itself, from the first use in this process.
        monkeypatch.setattr(Stats, "instance", None, raising=False)
        with warnings.catch_warnings():  # 2.11 warns about its own timer units while building the client
            warnings.simplefilter("ignore")
            getattr(Stats, "incr")  # noqa: B009 - the attribute access builds the client
        return lambda: None
    stats.initialize(factory=stats_utils.get_stats_factory(), export_legacy_names=False)
    return lambda: stats.initialize(factory=stats_utils.get_stats_factory(), export_legacy_names=False)


def counters(lines: list[str]) -> dict[str, int]:
    totals: dict[str, int] = {}
    for line in lines:
        name, _, rest = line.partition(":")
        value, _, kind = rest.partition("|")
        if kind.startswith("c"):
            totals[name] = totals.get(name, 0) + int(float(value))
    return totals


def add(sim, session_id, moment):
    session = sim.make_session("mobile", platform="android", session_id=session_id, created_at=moment, is_crash=True)
    sim.add_session(session, version_key=VERSION)


def test_requests_retries_429s_and_exported_sessions_reach_statsd(devrev_simulator, statsd):
    sim = devrev_simulator
    for number in range(3):
        add(sim, f"s{number}", DAY + timedelta(hours=number))
    sim.add_fault("rate_limit", retry_after=0, path=LIST)
    op = ListSessionsOperator(task_id="export", platform="android", version_key=VERSION, settle=timedelta(0))
    op.hook._sleep = lambda seconds: None

    result = op.execute({"data_interval_start": DAY, "data_interval_end": DAY + timedelta(days=1)})

    assert [session["session_id"] for session in result] == ["s0", "s1", "s2"]
    expected = {
        "devrev.requests.observability_sessions_list.429": 1,
        "devrev.requests.observability_sessions_list.200": 2,  # 3 sessions, 2 a page
        "devrev.retries": 1,
        "devrev.rate_limited": 1,
        "devrev.sessions_exported": 3,
    }
    totals = statsd(expected)
    assert {name: totals.get(f"airflow.{name}") for name in expected} == expected


def test_watcher_polls_and_events_reach_statsd(devrev_simulator, statsd, monkeypatch):
    from airflow_provider_devrev.triggers.devrev import DevRevNewSessionsTrigger
    from tests.triggers.test_new_sessions_trigger import T0, Driver, crash_trigger

    driver = Driver(start=T0)
    monkeypatch.setattr(DevRevNewSessionsTrigger, "clock", staticmethod(driver.time))
    monkeypatch.setattr(DevRevNewSessionsTrigger, "sleep", staticmethod(driver.sleep))

    async def scenario():
        driver.watch(crash_trigger(version_key=VERSION))
        assert await driver.poll() == []
        for number in range(2):
            add(devrev_simulator, f"new-{number}", datetime.fromtimestamp(driver.now - 30, tz=UTC))
        assert len(await driver.poll()) == 2
        await driver.stop()

    asyncio.run(scenario())
    expected = {"devrev.watcher.polls": 2, "devrev.watcher.events": 2, "devrev.watcher.sessions": 2}
    totals = statsd(expected)
    assert {name: totals.get(f"airflow.{name}") for name in expected} == expected


class Lines:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def info(self, message: str, *args: object) -> None:
        self.lines.append(message % args)


def test_progress_logs_one_line_at_most_every_30_seconds():
    now = [0.0]
    log = Lines()
    progress = Progress(log, "Listing android sessions", clock=lambda: now[0])
    for _ in range(100):  # 100 pages of 100, one every 2 s: 200 s
        now[0] += 2.0
        progress.add(pages=1, sessions=100)
    assert len(log.lines) == int(200 // PROGRESS_EVERY)
    assert log.lines[0].startswith("Listing android sessions: 15 pages, 1500 sessions so far in 30 s (50.0 sessions/s)")
    assert log.lines[-1].endswith("0 rate-limit (429) pauses")


def test_the_hooks_export_logs_progress_not_a_line_per_page(devrev_simulator, monkeypatch, caplog):
    import airflow_provider_devrev.progress as progress_module

    for number in range(10):
        add(devrev_simulator, f"p{number}", DAY + timedelta(minutes=number))
    ticks = iter(range(0, 10_000, 10))  # one clock reading per page, each 10 s later than the last
    monkeypatch.setattr(progress_module.Progress, "clock", staticmethod(lambda: float(next(ticks))))
    hook = DevRevHook()
    lines = Lines()
    monkeypatch.setattr(DevRevHook, "log", lines)

    assert len(list(hook.iter_sessions("android", VERSION, created_after=DAY))) == 10

    # 9 pages of 2 (each after the first repeats the session the one before ended on) over 90 s: a line every
    # 30 s, not one per page.
    assert len(lines.lines) == 3
    assert lines.lines[0].startswith("Listing android sessions: 3 pages, 4 sessions so far in 30 s")


def test_with_every_metrics_switch_off_nothing_reaches_airflows_metrics_object(monkeypatch):
    sent: list[tuple[str, int]] = []

    class Recorder:
        def incr(self, name: str, count: int) -> None:
            sent.append((name, count))

    monkeypatch.setattr(metrics, "_stats", lambda: Recorder())
    for switch in metrics._BACKEND_SWITCHES:
        monkeypatch.setenv(f"AIRFLOW__METRICS__{switch.upper()}", "False")
    metrics._enabled.cache_clear()
    try:
        metrics.request_answered("/observability.sessions.get", 404)
        assert sent == []
        monkeypatch.setenv("AIRFLOW__METRICS__OTEL_ON", "True")
        metrics._enabled.cache_clear()
        metrics.request_answered("/observability.sessions.get", 404)
        assert sent == [("devrev.requests.observability_sessions_get.404", 1)]
    finally:
        monkeypatch.undo()
        metrics._enabled.cache_clear()


# -- a metrics backend that fails --------------------------------------------------------------------------


@pytest.fixture
def refused_metrics(monkeypatch):
    """
    Airflow's StatsD metrics on, through a client whose agent refuses every connection (``tests/failing_statsd.py``);
    yields the metrics it tried to send.
    """
    from tests.failing_statsd import RefusedStatsClient

    # Bound and never listening: connecting to it is refused, and no other process can take the port meanwhile.
    closed = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    closed.bind(("127.0.0.1", 0))
    monkeypatch.setenv("AIRFLOW__METRICS__STATSD_ON", "True")
    monkeypatch.setenv("AIRFLOW__METRICS__STATSD_HOST", "127.0.0.1")
    monkeypatch.setenv("AIRFLOW__METRICS__STATSD_PORT", str(closed.getsockname()[1]))
    monkeypatch.setenv("AIRFLOW__METRICS__STATSD_CUSTOM_CLIENT_PATH", "tests.failing_statsd.RefusedStatsClient")
    metrics._enabled.cache_clear()
    reset = _use_configured_backend(monkeypatch)
    RefusedStatsClient.attempts.clear()
    try:
        yield RefusedStatsClient.attempts
    finally:
        closed.close()
        # Back to this process's own configuration first: a refusing client left behind would fail Airflow's own
        # metrics in the tests that follow.
        monkeypatch.undo()
        reset()
        metrics._enabled.cache_clear()


def tried(attempts: list[str]) -> set[str]:
    """The metric names a client tried to send (``airflow.devrev.retries:1|c`` gives ``devrev.retries``)."""
    return {line.partition(":")[0].removeprefix("airflow.") for line in attempts}


def test_a_failing_metrics_backend_never_fails_an_export_through_429s_and_5xx(devrev_simulator, refused_metrics):
    sim = devrev_simulator
    for number in range(3):
        add(sim, f"s{number}", DAY + timedelta(hours=number))
    sim.add_fault("rate_limit", retry_after=0, path=LIST)
    sim.add_fault("server_error", status=503, path=LIST)
    op = ListSessionsOperator(
        task_id="export", platform="android", version_key=VERSION, settle=timedelta(0), max_retry_wait=0.05
    )

    result = op.execute({"data_interval_start": DAY, "data_interval_end": DAY + timedelta(days=1)})

    assert [session["session_id"] for session in result] == ["s0", "s1", "s2"]
    assert [r.status for r in sim.requests_for(path=LIST)] == [429, 503, 200, 200]
    assert tried(refused_metrics) >= {
        "devrev.requests.observability_sessions_list.429",
        "devrev.requests.observability_sessions_list.503",
        "devrev.requests.observability_sessions_list.200",
        "devrev.retries",
        "devrev.rate_limited",
        "devrev.sessions_exported",
    }


def test_a_failing_metrics_backend_never_fails_a_bulk_fetch_paced_by_a_429(devrev_simulator, refused_metrics):
    sim = devrev_simulator
    for number in range(4):
        add(sim, f"b{number}", DAY)
    sim.add_fault("rate_limit", retry_after=0.05, path="/observability.sessions.get")

    sessions = DevRevHook(max_retry_wait=1).get_sessions("android", VERSION, ["b0", "b1", "b2", "b3"])

    assert [session["session_id"] for session in sessions] == ["b0", "b1", "b2", "b3"]
    assert tried(refused_metrics) >= {"devrev.rate_limited", "devrev.requests.observability_sessions_get.200"}


def test_a_failing_metrics_backend_never_fails_a_trigger_through_a_5xx(devrev_simulator, refused_metrics):
    from airflow_provider_devrev.triggers.devrev import DevRevSessionTrigger

    add(devrev_simulator, "waited-for", DAY)
    devrev_simulator.add_fault("server_error", status=503, path="/observability.sessions.get")
    trigger = DevRevSessionTrigger(
        devrev_conn_id="devrev_default",
        platform="android",
        session_id="waited-for",
        version_key=VERSION,
        poll_interval=0.1,
        hook_options={"max_retry_wait": 0.05},
    )

    async def events():
        return [event.payload async for event in trigger.run()]

    [event] = asyncio.run(events())

    assert event["status"] == "success"
    assert event["session"]["session_id"] == "waited-for"
    assert tried(refused_metrics) >= {"devrev.requests.observability_sessions_get.503", "devrev.retries"}


def test_a_failing_metrics_backend_never_fails_the_watcher(devrev_simulator, refused_metrics, monkeypatch):
    from airflow_provider_devrev.triggers.devrev import DevRevNewSessionsTrigger
    from tests.triggers.test_new_sessions_trigger import T0, Driver, crash_trigger

    driver = Driver(start=T0)
    monkeypatch.setattr(DevRevNewSessionsTrigger, "clock", staticmethod(driver.time))
    monkeypatch.setattr(DevRevNewSessionsTrigger, "sleep", staticmethod(driver.sleep))

    async def watch():
        driver.watch(crash_trigger(version_key=VERSION))
        assert await driver.poll() == []
        add(devrev_simulator, "new-crash", datetime.fromtimestamp(driver.now - 30, tz=UTC))
        fired = await driver.poll()
        await driver.stop()
        return fired

    fired = asyncio.run(watch())

    assert [payload["session"]["session_id"] for payload in fired] == ["new-crash"]
    assert tried(refused_metrics) >= {"devrev.watcher.polls", "devrev.watcher.events", "devrev.watcher.sessions"}


# -- requests that got no answer ---------------------------------------------------------------------------

GET = "devrev.requests.observability_sessions_get"


def unanswered_get(transport, *, retries, timeout=None):
    """One ``get_session`` through ``transport`` (retries not waited for), which must fail; its error."""
    from airflow_provider_devrev.exceptions import DevRevError

    async def no_wait(seconds):
        return None

    hook = DevRevHook(max_retries=retries, timeout=timeout, sleep=lambda seconds: None, async_sleep=no_wait)

    def get():
        if transport == "sync":
            return hook.get_session("android", "s-1", VERSION)
        if transport == "sync streaming":
            return hook.stream_session_recording("s-1", VERSION, lambda chunk: None, recording_id="r-1")
        return asyncio.run(hook.aget_session("android", "s-1", VERSION))

    with pytest.raises(DevRevError) as raised:
        get()
    return raised.value


def point_the_connection_at(monkeypatch, url):
    from airflow_provider_devrev.testing import DEFAULT_TOKEN

    monkeypatch.setenv(
        "AIRFLOW_CONN_DEVREV_DEFAULT", json.dumps({"conn_type": "devrev", "host": url, "password": DEFAULT_TOKEN})
    )


def request_counts(totals):
    """The ``devrev.requests.*`` counters received, without Airflow's prefix."""
    return {
        name.removeprefix("airflow."): n for name, n in totals.items() if name.startswith("airflow.devrev.requests.")
    }


@pytest.mark.parametrize("transport", ["sync", "async", "sync streaming"])
def test_a_refused_connection_counts_no_response_once_per_attempt(transport, statsd, monkeypatch):
    # Bound and never listening: every connection is refused, and no other process can take the port meanwhile.
    closed = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    closed.bind(("127.0.0.1", 0))
    try:
        point_the_connection_at(monkeypatch, f"http://127.0.0.1:{closed.getsockname()[1]}")
        error = unanswered_get(transport, retries=2)
    finally:
        closed.close()

    assert "connection refused" in str(error)
    endpoint = "devrev.requests.observability_sessions_data_get" if transport == "sync streaming" else GET
    totals = statsd({f"{endpoint}.no_response": 3, "devrev.retries": 2})
    assert request_counts(totals) == {f"{endpoint}.no_response": 3}
    assert totals.get("airflow.devrev.retries") == 2


@pytest.mark.parametrize("transport", ["sync", "async"])
def test_a_server_that_never_answers_counts_no_response_once_per_attempt(transport, statsd, monkeypatch):
    from tests.network.stall_servers import StallServer

    with StallServer("silent") as server:
        point_the_connection_at(monkeypatch, server.url)
        error = unanswered_get(transport, retries=1, timeout=0.3)

    assert getattr(error, "error_type", None) == "timeout"
    totals = statsd({f"{GET}.no_response": 2, "devrev.retries": 1})
    assert request_counts(totals) == {f"{GET}.no_response": 2}


@pytest.mark.parametrize("transport", ["sync", "async"])
def test_an_answer_whose_body_stalls_counts_its_status_not_no_response(transport, statsd, monkeypatch):
    """Each attempt counts once: by its status as soon as that arrives, even if the body never ends."""
    from tests.network.stall_servers import StallServer

    with StallServer("cut") as server:
        point_the_connection_at(monkeypatch, server.url)
        error = unanswered_get(transport, retries=1, timeout=0.3)

    assert getattr(error, "error_type", None) == "timeout"
    totals = statsd({f"{GET}.200": 2, "devrev.retries": 1})
    assert request_counts(totals) == {f"{GET}.200": 2}


def test_a_request_the_library_refuses_to_send_is_not_counted(statsd, monkeypatch):
    """Nothing left the process: neither an answer nor a request without one."""
    from airflow_provider_devrev import _failures
    from airflow_provider_devrev.contract import get_session_request, unsendable_request_error

    request = get_session_request("android", "s-1", VERSION)
    _failures.count_unanswered(request, unsendable_request_error(request, "http://127.0.0.1:1", ValueError("bad")))
    _failures.count_unanswered(request, _failures.network_failure("GET /x", "http://127.0.0.1:1", OSError()))
    totals = statsd({f"{GET}.no_response": 1})
    assert request_counts(totals) == {f"{GET}.no_response": 1}


@pytest.mark.parametrize("transport", ["sync", "async", "sync streaming"])
def test_headers_cut_at_the_request_timeout_count_no_response_not_a_status(transport, statsd, monkeypatch):
    from airflow_provider_devrev.testing import DEFAULT_TOKEN
    from tests.network.stall_servers import StallServer

    # A status line, then a header line a byte a second: on a worker, the watch cuts it at the deadline, and
    # http.client takes the cut for the end of the headers, with status 200.
    with StallServer("trickle_headers") as server:
        connection = {"conn_type": "devrev", "host": server.url, "password": DEFAULT_TOKEN}
        monkeypatch.setenv("AIRFLOW_CONN_DEVREV_DEFAULT", json.dumps({**connection, "extra": {"request_timeout": 1.5}}))
        error = unanswered_get(transport, retries=1)

    assert "request_timeout" in str(error)
    endpoint = "devrev.requests.observability_sessions_data_get" if transport == "sync streaming" else GET
    totals = statsd({f"{endpoint}.no_response": 2, "devrev.retries": 1})
    assert request_counts(totals) == {f"{endpoint}.no_response": 2}
