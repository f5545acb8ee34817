"""The simulator's in-flight accounting: ``peak_concurrency`` and ``reset_peak_concurrency()``."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
import requests

from airflow_provider_devrev.testing import DevRevSimulator
from tests.testing.test_simulator import raw_exchange

SELF = "/dev-users.self"
GET = "/observability.sessions.get"
TIMEOUT = 10


class ArrivalClock:
    """The simulator's clock; once armed, it signals each time the simulator reads it for a new request."""

    def __init__(self) -> None:
        self.armed = False
        self.arrived = threading.Event()

    def __call__(self) -> float:
        if self.armed:
            self.arrived.set()
        return time.monotonic()


@pytest.fixture
def sim() -> Iterator[DevRevSimulator]:
    with DevRevSimulator(seed_data=False) as simulator:
        yield simulator


def call(sim: DevRevSimulator, client: requests.Session | None = None) -> int:
    sender = client or requests
    response = sender.get(sim.url + SELF, headers={"Authorization": f"Bearer {sim.token}"}, timeout=TIMEOUT)
    return response.status_code


def test_nothing_in_flight_at_first(sim):
    assert sim.peak_concurrency == 0
    sim.reset_peak_concurrency()
    assert sim.peak_concurrency == 0


def test_sequential_requests_peak_at_one(sim):
    with requests.Session() as client:
        statuses = [call(sim, client) for _ in range(5)]
    statuses += [call(sim) for _ in range(3)]  # a new connection each

    assert statuses == [200] * 8
    assert sim.peak_concurrency == 1


def test_overlapping_requests_are_counted_and_reset_starts_afresh():
    clock = ArrivalClock()
    sim = DevRevSimulator(seed_data=False, clock=clock).start()
    outcome: list[object] = []

    def slow_call() -> None:
        try:
            outcome.append(call(sim))
        except requests.RequestException as err:
            outcome.append(err)

    slow = threading.Thread(target=slow_call, daemon=True)
    try:
        sim.add_fault("slow", delay=60)  # the first request stays in flight until the simulator stops
        clock.armed = True
        slow.start()
        assert clock.arrived.wait(TIMEOUT)  # it has arrived (and is counted: the same lock holds both)
        assert sim.peak_concurrency == 1
        assert call(sim) == 200  # a second thread, while the first waits
        assert sim.peak_concurrency == 2
        assert call(sim) == 200
        assert sim.peak_concurrency == 2  # a peak, not a count of requests

        sim.reset_peak_concurrency()  # the slow one is still in flight
        assert sim.peak_concurrency == 1
        assert call(sim) == 200
        assert sim.peak_concurrency == 2
    finally:
        sim.stop()  # ends the slow wait at once: its connection is dropped
        slow.join(TIMEOUT)
    assert len(outcome) == 1
    assert isinstance(outcome[0], requests.ConnectionError)


def test_dropped_connections_leave_nothing_in_flight(sim):
    sim.add_fault("drop", times=3)
    for _ in range(3):
        with pytest.raises(requests.ConnectionError):
            call(sim)
    assert [(r.status, r.fault) for r in sim.requests] == [(None, "drop")] * 3

    sim.reset_peak_concurrency()  # the peak becomes what is in flight now: nothing, if drops were released

    assert sim.peak_concurrency == 0
    assert call(sim) == 200
    assert sim.peak_concurrency == 1


def test_dropped_connections_on_a_keep_alive_session_leave_nothing_in_flight(sim):
    with requests.Session() as client:
        assert call(sim, client) == 200
        sim.add_fault("drop", path=SELF)
        with pytest.raises(requests.ConnectionError):
            call(sim, client)
        sim.reset_peak_concurrency()
        assert sim.peak_concurrency == 0
        assert call(sim, client) == 200
    assert sim.peak_concurrency == 1


@pytest.mark.parametrize(
    ("framing", "body"),
    [("Content-Length: twelve", b"{}"), ("Transfer-Encoding: chunked", b"zz\r\n{}\r\n0\r\n\r\n")],
    ids=["bad-content-length", "bad-chunk-size"],
)
def test_framing_errors_leave_nothing_in_flight(sim, framing, body):
    head = f"POST {GET} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {sim.token}\r\n{framing}\r\n\r\n"

    answer = raw_exchange(sim, head.encode() + body)  # returns once the simulator has closed the connection

    assert answer.startswith(b"HTTP/1.1 400 ")
    assert sim.peak_concurrency == 1
    sim.reset_peak_concurrency()
    assert sim.peak_concurrency == 0
    assert call(sim) == 200
    assert sim.peak_concurrency == 1
