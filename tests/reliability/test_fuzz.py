"""Fuzzed and hostile input, with hypothesis, against one simulator over real HTTP on 127.0.0.1."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from hypothesis import HealthCheck, given
from hypothesis import strategies as st

from airflow_provider_devrev.contract import PLATFORMS
from airflow_provider_devrev.exceptions import DevRevError, DevRevInvalidInputError
from airflow_provider_devrev.hooks.devrev import DevRevHook
from airflow_provider_devrev.testing import DevRevSimulator
from tests.properties import sized

GET = "/observability.sessions.get"
FUZZ = sized(60, suppress_health_check=[HealthCheck.function_scoped_fixture])

# Any Unicode except lone surrogates (not encodable, so not text a DAG could hold), stressing what URLs and
# JSON find awkward: reserved characters, spaces, percent signs, controls, astral characters.
ANY_CHAR = st.characters(blacklist_categories=("Cs",))
AWKWARD = st.sampled_from([*"%+&=?#/ \t\n\\\"'<>{}[]|^`~;:@$,", "é", "🚀", "\x00"])
_ANY_IDS = st.one_of(
    st.text(alphabet=st.one_of(ANY_CHAR, AWKWARD), min_size=1, max_size=4096),
    # Percent sequences that a double decoding would turn into something else.
    st.lists(st.sampled_from(["%20", "%zz", "%25", "%2B", "+", "a"]), min_size=1, max_size=50).map("".join),
)
# Leading and trailing whitespace is refused (see the test below); inner whitespace is sent as given.
IDS = _ANY_IDS.map(str.strip).filter(bool)


@pytest.fixture(scope="module")
def sim():
    with DevRevSimulator() as simulator:
        yield simulator


@pytest.fixture
def conn(sim, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_DEVREV_DEFAULT", sim.connection_json())
    return sim


def fresh(sim: DevRevSimulator) -> DevRevSimulator:
    """Hypothesis runs many examples per test call: each starts with no faults and an empty log."""
    sim.clear_faults()
    sim.clear_requests()
    return sim


class RecordingSleep:
    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.mark.property
@FUZZ
@given(platform=st.sampled_from(PLATFORMS), session_id=IDS, version_key=IDS)
def test_any_id_reaches_devrev_exactly_as_given(conn, platform, session_id, version_key):
    sim = fresh(conn)
    kind = "web" if platform == "web" else "mobile"
    session = sim.add_session(sim.make_session(kind, platform=platform, session_id=session_id), version_key=version_key)
    sim.clear_requests()

    assert DevRevHook().get_session(platform, session_id, version_key) == session

    [request] = sim.requests_for(path=GET)
    sent = request.query if request.method == "GET" else request.body
    assert (sent["session_id"], sent["version_key"], sent["platform"]) == (session_id, version_key, platform)
    sim.remove_session(session_id, version_key=version_key)


NOT_TEXT = st.one_of(
    st.none(),
    st.integers(),
    st.floats(allow_nan=False),
    st.booleans(),
    st.binary(),
    st.lists(st.text(max_size=3), max_size=2),
    st.text(alphabet=" \t\n\r\x0b\x0c", max_size=20),
)


@pytest.mark.property
@FUZZ
@given(
    field=st.sampled_from(["session_id", "version_key"]),
    value=IDS,
    pad=st.sampled_from([" ", "\t", "\n", "\r\n", "\u00a0", "\u3000"]),
    where=st.sampled_from(["lead", "trail", "both"]),
)
def test_an_id_with_surrounding_whitespace_is_refused_showing_it(conn, field, value, pad, where):
    fresh(conn)
    padded = (pad if where != "trail" else "") + value + (pad if where != "lead" else "")
    args = {"platform": "ios", "session_id": "s-1", "version_key": "v-1", field: padded}

    with pytest.raises(DevRevInvalidInputError, match="whitespace") as caught:
        DevRevHook().get_session(**args)

    assert caught.value.field_name == field
    assert caught.value.value == padded
    # Shown with repr, so the space or newline is visible (a long value is cut before its end).
    assert repr(padded)[:40] in str(caught.value)
    assert conn.requests == []


@pytest.mark.property
@FUZZ
@given(field=st.sampled_from(["platform", "session_id", "version_key"]), data=st.data())
def test_invalid_input_is_rejected_before_any_request_naming_the_field(conn, field, data):
    fresh(conn)
    args = {"platform": "ios", "session_id": "s-1", "version_key": "v-1"}
    if field == "platform":
        args[field] = data.draw(st.one_of(NOT_TEXT, st.text(max_size=20).filter(lambda s: s not in PLATFORMS)))
    else:
        args[field] = data.draw(NOT_TEXT)

    with pytest.raises(DevRevInvalidInputError) as caught:
        DevRevHook().get_session(**args)

    assert caught.value.field_name == field
    assert field in str(caught.value)
    assert conn.requests == []


def _retry_after_values():
    now = datetime.now(UTC)
    return st.one_of(
        st.floats(allow_nan=True, allow_infinity=True).map(str),
        st.integers(min_value=-(10**12), max_value=10**12).map(str),
        st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40),
        st.integers(min_value=-(10**6), max_value=10**6).map(
            lambda s: format_datetime(now + timedelta(seconds=s), usegmt=True)
        ),
    )


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)
ERROR_BODIES = st.one_of(
    JSON_VALUES,
    st.fixed_dictionaries(
        {"type": st.text(max_size=30)},
        optional={
            "message": JSON_VALUES,
            "retry_after": JSON_VALUES,
            "reference_id": JSON_VALUES,
            "max_bytes": JSON_VALUES,
        },
    ),
).filter(lambda body: not (isinstance(body, dict) and isinstance(body.get("session"), dict)))


@pytest.mark.property
@FUZZ
@given(
    status=st.integers(min_value=400, max_value=599) | st.sampled_from([200, 201, 204, 301, 302, 304]),
    body=ERROR_BODIES,
    retry_after=st.none() | _retry_after_values(),
)
def test_hostile_answers_raise_only_devrev_errors_and_never_wait_too_long(conn, status, body, retry_after):
    fresh(conn)
    headers = {} if retry_after is None else {"Retry-After": retry_after}
    conn.add_fault("status", status=status, body=body, headers=headers, times=None)
    sleep = RecordingSleep()

    # Anything but a DevRevError escapes pytest.raises and fails the test; so would a "session".
    with pytest.raises(DevRevError) as caught:
        DevRevHook(sleep=sleep, max_retries=2, max_retry_wait=30).get_session("android", "s-1", "v-1")
    assert "\n" not in str(caught.value)
    assert all(0 < wait <= 30 for wait in sleep.waits)
    assert len(conn.requests) == len(sleep.waits) + 1 <= 3


@pytest.mark.property
@FUZZ
@given(status=st.sampled_from([200, 404, 429, 500, 502, 503]), body=st.text(max_size=500))
def test_bodies_that_are_not_json_raise_only_devrev_errors(conn, status, body):
    fresh(conn)
    conn.add_fault("non_json", status=status, body=body, times=None)
    sleep = RecordingSleep()

    with pytest.raises(DevRevError):
        DevRevHook(sleep=sleep, max_retries=1, max_retry_wait=30).get_session("web", "s-1", "v-1")
    assert all(0 < wait <= 30 for wait in sleep.waits)


def test_a_large_valid_session_comes_back_whole(conn):
    sim = fresh(conn)
    attributes = {f"attribute_{i:05d}": "x" * 90 for i in range(10_500)}
    session = sim.add_session(
        sim.make_session("web", platform="web", session_id="big-one", session_attributes={"attributes": attributes}),
        version_key="v-big",
    )
    assert len(json.dumps(session)) > 1_000_000

    got = DevRevHook().get_session("web", "big-one", "v-big")

    assert got == session
    assert os.environ["AIRFLOW_CONN_DEVREV_DEFAULT"] == sim.connection_json()
