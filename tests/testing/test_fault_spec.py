"""The ``--fault`` syntax (pure): every kind with every parameter parses to what ``add_fault`` is given."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from airflow_provider_devrev.testing.api import ROUTES
from airflow_provider_devrev.testing.fault_spec import (
    FaultSpec,
    FaultSpecError,
    endpoint_path,
    format_fault_spec,
    help_text,
)
from airflow_provider_devrev.testing.fault_spec import parse_fault_spec as parse
from airflow_provider_devrev.testing.faults import FAULT_KINDS, FAULT_PARAMS, make_fault
from tests.properties import sized

# Text that must survive the syntax: commas, @, *, quotes, braces, colons, equals signs, unicode.
TEXT = st.text(alphabet=st.sampled_from('ab ,@*:="{}[]\\é\n'), max_size=12) | st.text(max_size=8)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**6), 10**6) | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=8,
)
SECONDS = st.integers(0, 3600) | st.floats(0, 3600, allow_nan=False, allow_infinity=False)
STATUS = st.integers(100, 599)
#: A valid value for every parameter of every kind: the test below fails when a kind gains one not listed here.
VALUES: dict[str, dict[str, st.SearchStrategy[Any]]] = {
    "rate_limit": {
        "retry_after": SECONDS,
        "header": st.sampled_from(["seconds", "http-date", None]),
        "body_retry_after": st.integers(0, 3600) | st.none(),
    },
    "server_error": {"status": st.sampled_from([500, 502, 503, 504]), "reference_id": TEXT},
    "status": {
        "status": STATUS,
        "body": JSON_VALUES,
        "headers": st.dictionaries(st.from_regex(r"X-[A-Za-z]{1,8}", fullmatch=True), TEXT, max_size=3),
    },
    "slow": {"delay": SECONDS},
    "drop": {},
    "non_json": {"status": STATUS, "body": TEXT, "content_type": st.sampled_from(["text/html", "text/plain"])},
    "truncated_json": {"status": STATUS},
    "cut_body": {"after_bytes": st.integers(0, 10**9) | st.none()},
    "revoked": {},
}
#: Parameters a kind cannot do without.
REQUIRED = {"status": {"status"}, "slow": {"delay"}}
#: Every way ``@ENDPOINT`` may name each path.
SPELLINGS = [
    (spelling, path)
    for path in ROUTES
    for spelling in {
        path,
        path[1:],
        path[1:].removeprefix("observability."),
        "/" + path[1:].removeprefix("observability."),
    }
]


def test_the_value_table_covers_every_kind_and_parameter() -> None:
    assert {kind: set(params) for kind, params in VALUES.items()} == {k: set(v) for k, v in FAULT_PARAMS.items()}
    assert set(FAULT_PARAMS) == FAULT_KINDS


@st.composite
def fault(draw: st.DrawFn) -> tuple[str, dict[str, Any], tuple[str, str] | None, int | None]:
    kind = draw(st.sampled_from(sorted(VALUES)))
    names = draw(st.sets(st.sampled_from(sorted(VALUES[kind])))) if VALUES[kind] else set()
    names |= REQUIRED.get(kind, set())
    # In any order: the syntax must not depend on it.
    params = {name: draw(VALUES[kind][name]) for name in draw(st.permutations(sorted(names)))}
    endpoint = draw(st.none() | st.sampled_from(SPELLINGS))
    times = draw(st.none() | st.integers(1, 10**6))
    return kind, params, endpoint, times


@pytest.mark.property
@sized(400)
@given(fault())
def test_every_kind_with_any_of_its_parameters_parses_to_what_add_fault_is_given(case: Any) -> None:
    kind, params, endpoint, times = case
    text = format_fault_spec(kind, params, endpoint=endpoint and endpoint[0], times=times)

    spec = parse(text)

    path = endpoint and endpoint[1]
    assert spec == FaultSpec(kind=kind, params=params, path=path, times=times), text
    # And the simulator takes it as the Python API would.
    expected = make_fault(kind, times=times, path=path, session_id=None, params=dict(params))
    assert (
        make_fault(spec.kind, times=spec.times, path=spec.path, session_id=None, params=dict(spec.params)) == expected
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("drop", FaultSpec("drop", {})),
        ("revoked*always", FaultSpec("revoked", {}, times=None)),
        (
            "rate_limit:retry_after=0.25,header=http-date",
            FaultSpec("rate_limit", {"retry_after": 0.25, "header": "http-date"}),
        ),
        (
            "rate_limit:header=null@sessions.get*2",
            FaultSpec("rate_limit", {"header": None}, "/observability.sessions.get", 2),
        ),
        # Plain text needs no quotes; JSON-looking text does ("503" would be a number).
        ("server_error:reference_id=ref-1", FaultSpec("server_error", {"reference_id": "ref-1"})),
        ('non_json:body="503",status=503', FaultSpec("non_json", {"body": "503", "status": 503})),
        # Commas, @ and * inside JSON are the value's.
        (
            'status:status=409,body={"type":"conflict","message":"a, b @ c*2"},headers={"X-A":"1"}*3',
            FaultSpec(
                "status",
                {"status": 409, "body": {"type": "conflict", "message": "a, b @ c*2"}, "headers": {"X-A": "1"}},
                times=3,
            ),
        ),
        ("slow:delay=2 @ dev-users.self * 4", FaultSpec("slow", {"delay": 2}, "/dev-users.self", 4)),
        (
            "cut_body:after_bytes=10@/observability.sessions.data.get",
            FaultSpec("cut_body", {"after_bytes": 10}, "/observability.sessions.data.get"),
        ),
    ],
)
def test_examples_parse(text: str, expected: FaultSpec) -> None:
    assert parse(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "no fault kind"),
        ("boom", "unknown fault kind 'boom'"),
        ("drop:delay=1", "takes no parameter(s) ['delay']"),
        ("slow", "slow needs delay"),
        ("slow:delay=-1", "slow needs delay"),
        ("slow:delay", "expected KEY=VALUE, got 'delay'"),
        ("slow:delay=1,delay=2", "parameter 'delay' given twice"),
        ("rate_limit:header=minutes", "header must be 'seconds', 'http-date' or None"),
        ("server_error:status=501", "status must be one of"),
        ("status:body={}", "status must be an int in 100..599, not None"),
        ('status:status=400,body={"a": 1', "unbalanced"),
        ("drop@sessions.gets", "unknown endpoint 'sessions.gets'"),
        ("drop*0", "TIMES must be a whole number >= 1 or 'always', not '0'"),
        ("drop*twice", "not 'twice'"),
        ("drop*²", "not '²'"),
        ("drop*2*3", "'*' appears twice"),
        ("drop@sessions.get@sessions.list", "'@' appears twice"),
        # JSON takes NaN and Infinity (and 1e309 overflows to it): no wait can be computed from them, and
        # Infinity used to escape as an OverflowError (a traceback, not exit status 2).
        ("rate_limit:retry_after=Infinity", "retry_after must be a number >= 0"),
        ("rate_limit:retry_after=1e309", "retry_after must be a number >= 0"),
        ("rate_limit:retry_after=NaN", "retry_after must be a number >= 0"),
        ("rate_limit:retry_after=true", "retry_after must be a number >= 0"),
        # A date too far to write in an HTTP-date header failed each request it met instead.
        ("rate_limit:header=http-date,retry_after=1e300", "retry_after must be a number >= 0"),
        ("slow:delay=NaN", "slow needs delay"),
        ("slow:delay=Infinity", "slow needs delay"),
        ("slow:delay=1e300", "slow needs delay"),
        # Not a JSON object: every request the fault met failed in the simulator instead.
        ("status:status=400,headers=5", "headers must be a JSON object"),
        ('status:status=400,headers=["X-A"]', "headers must be a JSON object"),
    ],
)
def test_a_bad_spec_is_refused_naming_the_value_and_the_problem(text: str, message: str) -> None:
    with pytest.raises(FaultSpecError) as raised:
        parse(text)
    assert str(raised.value).startswith(f"bad --fault {text!r}: "), raised.value
    assert message in str(raised.value)


def test_the_help_lists_every_kind_with_its_parameters_and_every_endpoint() -> None:
    text = help_text()
    for kind, params in FAULT_PARAMS.items():
        [line] = [line for line in text.splitlines() if line.split()[:1] == [kind]]
        assert set(line.split(None, 1)[1].replace(",", " ").split()) == (set(params) or {"(no", "parameters)"})
    for path in ROUTES:
        assert endpoint_path(path[1:].removeprefix("observability.")) == path
        assert path[1:].removeprefix("observability.") in text
    # Each example in the help parses.
    examples = text.split("examples:\n", 1)[1]
    for line in examples.splitlines():
        for spec in line.split("--fault ")[1:]:
            parse(spec.strip())


def test_describe_names_the_kind_its_parameters_the_endpoint_and_the_count() -> None:
    assert parse("server_error:status=503@sessions.get*3").describe() == (
        "fault server_error (status=503) on /observability.sessions.get: the next 3 request(s)"
    )
    assert parse("revoked*always").describe() == "fault revoked on every endpoint: every request"
    assert json.loads(parse('status:status=400,body={"a":[1]}').describe().split("body=")[1].split(")")[0]) == {
        "a": [1]
    }
