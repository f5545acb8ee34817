"""
The shared rate limit (``hooks/_rate_gate.py``) as a model: one gate, a fake clock, many calls admitted, answered
and released in any order, with 429s and ``X-Ratelimit-*`` answers arriving at any step.
"""

from __future__ import annotations

import logging

import pytest
from hypothesis import given
from hypothesis import strategies as st

from airflow_provider_devrev.connection import ConnectionSettings
from airflow_provider_devrev.exceptions import DevRevRateLimitError
from airflow_provider_devrev.hooks import _rate_gate
from airflow_provider_devrev.hooks._rate_gate import RateGate, gate_for, paused_error
from tests.properties import sized

TOKEN = "secret-token-for-the-gate-0123"


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def admit(gate: RateGate, clock: Clock, *, max_wait: float = 300.0, deadline: float | None = None) -> float:
    """Admit one call as a transport does, sleeping (on the fake clock) what the gate says; the time waited."""
    started, waited = clock.now, -1
    while True:
        wait, waited = gate.admit(waited, max_wait, deadline)
        if not wait:
            return clock.now - started
        clock.now += wait


def headers(remaining: int, reset: float, limit: int = 10) -> dict[str, str]:
    return {"X-Ratelimit-Limit": str(limit), "X-Ratelimit-Remaining": str(remaining), "X-Ratelimit-Reset": str(reset)}


def test_a_429_pauses_every_call_until_its_retry_after():
    clock = Clock()
    gate = RateGate("https://api.devrev.ai", clock=clock)
    assert admit(gate, clock) == 0
    gate.observe(429, {"Retry-After": "7"}, 7.0)
    gate.release()
    assert admit(gate, clock) == pytest.approx(7.0)
    # The pause is over for every later call too.
    assert admit(gate, clock) == 0


def test_remaining_zero_pauses_until_the_reset_before_any_429():
    clock = Clock()
    gate = RateGate("h", clock=clock)
    admit(gate, clock)
    gate.observe(200, headers(0, clock.now + 4), None)
    gate.release()
    assert admit(gate, clock) == pytest.approx(4.0)


def test_no_more_in_flight_than_the_server_said_remain():
    clock = Clock()
    gate = RateGate("h", clock=clock)
    admit(gate, clock)
    gate.observe(200, headers(3, clock.now + 10), None)
    gate.release()
    for _ in range(3):
        assert admit(gate, clock) == 0
    # A fourth would overrun the window: it waits for the reset.
    assert admit(gate, clock) == pytest.approx(10.0)


def test_a_wait_past_max_retry_wait_or_the_deadline_is_refused_at_once():
    clock = Clock()
    gate = RateGate("h", clock=clock)
    gate.observe(429, {}, 60.0)
    with pytest.raises(DevRevRateLimitError) as caught:
        admit(gate, clock, max_wait=30.0)
    assert caught.value.status_code == 429
    assert caught.value.retry_after == pytest.approx(60.0)
    with pytest.raises(DevRevRateLimitError):
        admit(gate, clock, deadline=clock.now + 59)
    assert clock.now == 1_000_000.0, "nothing was waited"
    assert admit(gate, clock, deadline=clock.now + 61) == pytest.approx(60.0)


def test_each_pause_is_waited_once_by_a_call_so_a_fake_sleep_never_spins():
    clock = Clock()
    gate = RateGate("h", clock=clock)
    gate.observe(429, {}, 5.0)
    wait, pause = gate.admit(-1, 300.0, None)
    assert wait == pytest.approx(5.0)
    # The sleep returned at once (a test's fake): the same pause is not waited again.
    assert gate.admit(pause, 300.0, None) == (0.0, 0)


@pytest.mark.parametrize(
    "reset_ahead",
    [
        pytest.param(lambda now: now * 1000 + 60_000, id="epoch-milliseconds"),
        pytest.param(lambda now: 1e300, id="garbage"),
    ],
)
def test_a_reset_too_far_ahead_to_be_a_window_is_not_believed(reset_ahead):
    # A gateway sending X-Ratelimit-Reset in milliseconds, or garbage, would otherwise pause the connection
    # for the life of the process: no request would be sent again to learn otherwise.
    clock = Clock()
    gate = RateGate("h", clock=clock)
    admit(gate, clock)
    gate.observe(200, headers(0, reset_ahead(clock.now)), None)
    gate.release()
    assert admit(gate, clock) == 0


def test_a_429_pauses_the_others_no_longer_than_max_pause():
    # The 429's own call weighs its Retry-After against max_retry_wait; the others are not locked out for ever
    # by a wait no rate-limit window lasts: after MAX_PAUSE one of them asks the server again.
    clock = Clock()
    gate = RateGate("h", clock=clock)
    admit(gate, clock)
    gate.observe(429, {"Retry-After": "1e12"}, 1e12)
    gate.release()
    with pytest.raises(DevRevRateLimitError) as caught:
        admit(gate, clock)
    assert caught.value.retry_after == pytest.approx(_rate_gate.MAX_PAUSE)
    clock.now += _rate_gate.MAX_PAUSE
    assert admit(gate, clock) == 0


# -- the model -----------------------------------------------------------------------------------------------

step = st.one_of(
    st.tuples(st.just("start")),
    st.tuples(st.just("answer"), st.integers(0, 5), st.floats(0.5, 20)),
    st.tuples(st.just("429"), st.one_of(st.none(), st.floats(0, 20))),
    st.tuples(st.just("fail")),
    st.tuples(st.just("tick"), st.floats(0, 30)),
)


@pytest.mark.property
@sized(300)
@given(st.lists(step, max_size=60), st.floats(1, 40), st.one_of(st.none(), st.floats(1, 60)))
def test_model_no_call_starts_in_a_pause_it_has_not_waited_and_no_wait_is_unbounded(steps, max_wait, deadline_in):
    """
    Calls start, get answers (a window's remaining and reset, a 429 with or without a wait, no answer) and
    time passes, in any order. Invariants: a started call never began inside a pause that existed when it
    asked (unless the call waited it out first); in flight is exactly started minus ended; no wait exceeds
    max_retry_wait or passes the deadline (such a call fails at once instead, having waited nothing); with a
    window's remaining known, never more in flight than it.
    """
    clock = Clock()
    gate = RateGate("h", clock=clock)
    in_flight = 0
    for action, *args in steps:
        if action == "start":
            deadline = None if deadline_in is None else clock.now + deadline_in
            asked_at, paused_until = clock.now, gate.paused_until
            try:
                waited = admit(gate, clock, max_wait=max_wait, deadline=deadline)
            except DevRevRateLimitError as err:
                refused: DevRevRateLimitError | None = err
            else:
                refused = None
            if refused is not None:
                assert clock.now == asked_at
                assert refused.retry_after is not None
                past_deadline = deadline is not None and asked_at + refused.retry_after >= deadline
                assert refused.retry_after > max_wait or past_deadline
                continue
            in_flight += 1
            assert clock.now >= paused_until or waited > 0
            assert waited <= max_wait
            assert deadline is None or clock.now < deadline
            if gate.remaining is not None and gate.reset_at is not None and clock.now < gate.reset_at:
                assert gate.in_flight <= max(gate.remaining, 0) or waited > 0
        elif action in ("answer", "429", "fail") and in_flight:
            if action == "answer":
                gate.observe(200, headers(args[0], clock.now + args[1]), None)
            elif action == "429":
                before = clock.now
                gate.observe(429, {}, args[0])
                assert gate.paused_until >= before + (args[0] if args[0] is not None else _rate_gate.FALLBACK_PAUSE)
            gate.release()
            in_flight -= 1
        elif action == "tick":
            clock.now += args[0]
        assert gate.in_flight == in_flight


# -- keys, and the token ---------------------------------------------------------------------------------------


def settings(base_url: str = "https://api.devrev.ai", token: str = TOKEN) -> ConnectionSettings:
    return ConnectionSettings(base_url=base_url, token=token)


def test_one_gate_per_host_and_token_shared_by_every_settings_object_of_it():
    assert gate_for(settings()) is gate_for(settings())
    assert gate_for(settings()) is not gate_for(settings(token=TOKEN + "-other"))
    assert gate_for(settings()) is not gate_for(settings(base_url="https://eu.api.devrev.ai"))


def test_no_structure_or_line_of_the_gates_holds_the_token(caplog):
    gate = gate_for(settings())
    assert gate is not None
    caplog.set_level(logging.WARNING, logger=_rate_gate.__name__)
    gate.observe(429, {"Retry-After": "3"}, 3.0)
    texts = [repr(gate), str(_rate_gate._GATES), caplog.text, str(paused_error(gate.name, 3.0))]
    assert "pauses 3.0 s" in caplog.text
    assert not any(TOKEN in text for text in texts), texts


def test_gates_off_for_the_benchmark_only(monkeypatch):
    monkeypatch.setattr(_rate_gate, "ENABLED", False)
    assert gate_for(settings()) is None
