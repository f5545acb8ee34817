"""The pure contract of ``observability.sessions.list`` (``airflow_provider_devrev.listing``): no I/O here.

Every request :meth:`SessionQuery.page_request` builds is also validated against the contract shipped in the
package (``testing/contract/openapi.yaml``): the ``observability-sessions-list-request`` body, or the GET form's
query. A missing spec fails the test.
"""

from __future__ import annotations

import itertools
import json
import math
from datetime import UTC, datetime, timedelta, timezone
from functools import cache
from typing import Any

import pendulum
import pytest
import requests
from hypothesis import HealthCheck, given
from hypothesis import strategies as st
from openapi_core import OpenAPI
from openapi_core.contrib.requests import RequestsOpenAPIRequest
from openapi_core.exceptions import OpenAPIError

from airflow_provider_devrev.contract import ApiRequest
from airflow_provider_devrev.exceptions import DevRevInvalidInputError, DevRevUnexpectedResponseError
from airflow_provider_devrev.listing import (
    FILTER_FIELDS,
    MAX_PAGE_SIZE,
    SESSIONS_LIST_PATH,
    SeenSessions,
    SessionPage,
    format_timestamp,
    parse_page,
    session_query,
    to_utc,
    validate_filters,
)
from tests.properties import sized
from tests.testing.test_simulator_contract import find_spec, spec_dict

UTC = UTC
VK = "com.acme.shop@5.2.0"
A = datetime(2025, 3, 1, 0, 0, tzinfo=UTC)
B = datetime(2025, 3, 1, 1, 0, tzinfo=UTC)


def iso(moment: datetime) -> str:
    """A session's ``created_at`` as DevRev writes it (milliseconds, ``Z``)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def session_at(created_at: Any, session_id: str = "s") -> dict[str, Any]:
    return {"type": "mobile", "session_id": session_id, "created_at": created_at}


# -- GET or POST ------------------------------------------------------------------------------------


def test_plain_listing_is_a_get_with_query_only():
    query = session_query("android", VK)

    first = query.page_request()
    later = query.page_request("cur/sor+1")

    assert not query.uses_post
    assert (first.method, first.path, first.body) == ("GET", SESSIONS_LIST_PATH, None)
    assert first.query == (("platform", "android"), ("version_key", VK))
    assert later.query == (("platform", "android"), ("version_key", VK), ("cursor", "cur/sor+1"))
    assert later.body is None
    assert later.result_key == ""  # the whole page: sessions and cursors side by side


def test_get_carries_page_size_as_limit():
    request = session_query("ios", VK, page_size=25).page_request("c1")

    assert request.method == "GET"
    assert dict(request.query) == {"platform": "ios", "version_key": VK, "cursor": "c1", "limit": "25"}
    assert (
        request.url("http://h")
        == f"http://h{SESSIONS_LIST_PATH}?platform=ios&version_key=com.acme.shop%405.2.0&cursor=c1&limit=25"
    )


def test_empty_filters_still_use_get():
    assert session_query("android", VK, filters={}).page_request().method == "GET"
    assert session_query("android", VK, filters=None).page_request().method == "GET"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"filters": {"is_crash": True}},
        {"created_after": A},
        {"created_before": B},
        {"created_after": A, "created_before": B},
    ],
    ids=["filters", "after-only", "before-only", "both-bounds"],
)
def test_filters_or_dates_switch_to_post_with_no_query(kwargs):
    query = session_query("android", VK, **kwargs)

    request = query.page_request()

    assert query.uses_post
    assert (request.method, request.path, request.query) == ("POST", SESSIONS_LIST_PATH, ())
    assert request.body is not None
    assert (request.body["type"], request.body["platform"], request.body["version_key"]) == ("mobile", "android", VK)


# -- the POST body -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("platform", "session_type"), [("android", "mobile"), ("ios", "mobile"), ("web", "web")])
def test_body_type_follows_platform(platform, session_type):
    query = session_query(platform, VK, created_after=A)

    assert query.session_type == session_type
    assert query.page_request().body["type"] == session_type
    # Saying the right type explicitly changes nothing.
    assert session_query(platform, VK, type=session_type, created_after=A) == query


def test_body_shape_with_everything():
    after = datetime(2025, 3, 1, 12, 30, 15, 123456, tzinfo=UTC)
    before = datetime(2025, 3, 2, 0, 0, 0, tzinfo=UTC)
    filters = {"is_crash": True, "app_version": ["5.2.0", "5.2.1"], "session_duration": {"min_ms": 1000}}
    query = session_query("android", VK, filters=filters, created_after=after, created_before=before, page_size=100)

    assert query.page_request().body == {
        "type": "mobile",
        "platform": "android",
        "version_key": VK,
        "is_crash": True,
        "app_version": ["5.2.0", "5.2.1"],
        "session_duration": {"min_ms": 1000},
        "created_at": {
            "type": "range",
            "after": "2025-03-01T12:30:15.123456Z",
            "before": "2025-03-02T00:00:00.000000Z",
        },
        "limit": 100,
    }
    assert query.page_request("next-1").body["cursor"] == "next-1"
    assert "cursor" not in query.page_request().body
    json.dumps(query.page_request("next-1").body)  # the body is plain JSON


def test_body_has_only_the_bounds_given():
    only_after = session_query("web", VK, created_after=A).page_request().body
    only_before = session_query("web", VK, created_before=B).page_request().body

    assert only_after["created_at"] == {"type": "range", "after": "2025-03-01T00:00:00.000000Z"}
    assert only_before["created_at"] == {"type": "range", "before": "2025-03-01T01:00:00.000000Z"}
    assert "limit" not in only_after
    assert "created_at" not in session_query("web", VK, filters={"has_rage_clicks": True}).page_request().body


def test_bounds_in_other_offsets_are_sent_in_utc():
    paris_summer = timezone(timedelta(hours=2))
    query = session_query(
        "ios",
        VK,
        created_after=datetime(2025, 7, 1, 2, 0, 0, 500, tzinfo=paris_summer),
        created_before="2025-07-01T05:30:00.25+05:30",
    )

    assert query.page_request().body["created_at"] == {
        "type": "range",
        "after": "2025-07-01T00:00:00.000500Z",
        "before": "2025-07-01T00:00:00.250000Z",
    }


def test_filters_are_copied_not_shared():
    filters: dict[str, Any] = {"is_crash": True}
    query = session_query("android", VK, filters=filters)
    filters["is_anr"] = True

    assert "is_anr" not in query.page_request().body


# -- validation --------------------------------------------------------------------------------------

BAD_ARGUMENTS = [
    ({"platform": "windows"}, "platform", "windows"),
    ({"platform": "Android"}, "platform", "Android"),
    ({"platform": None}, "platform", None),
    ({"version_key": ""}, "version_key", ""),
    ({"version_key": "  \n"}, "version_key", "  \n"),
    ({"version_key": "app@1.0 "}, "version_key", "app@1.0 "),
    ({"version_key": None}, "version_key", None),
    ({"filters": {"is_crahs": True}}, "filters['is_crahs']", True),
    ({"filters": {"is_crash": "yes"}}, "filters['is_crash']", "yes"),
    ({"filters": {"is_crash": 1}}, "filters['is_crash']", 1),
    ({"filters": {"app_version": "5.2.0"}}, "filters['app_version']", "5.2.0"),
    ({"filters": {"app_version": ["5.2.0", 5]}}, "filters['app_version']", ["5.2.0", 5]),
    ({"filters": {"session_duration": 5000}}, "filters['session_duration']", 5000),
    ({"filters": {"session_attributes": ["plan"]}}, "filters['session_attributes']", ["plan"]),
    ({"filters": {"has_rage_clicks": True}}, "filters['has_rage_clicks']", True),  # a web filter, mobile query
    (
        {"filters": {"created_at": {"type": "range", "after": "2025-01-01T00:00:00Z"}}},
        "filters['created_at']",
        {"type": "range", "after": "2025-01-01T00:00:00Z"},
    ),
    ({"filters": "is_crash"}, "filters", "is_crash"),
    ({"filters": [("is_crash", True)]}, "filters", [("is_crash", True)]),
    ({"created_after": datetime(2025, 1, 1)}, "created_after", datetime(2025, 1, 1)),
    ({"created_before": datetime(2025, 1, 1)}, "created_before", datetime(2025, 1, 1)),
    ({"created_after": "2025-01-01T00:00:00"}, "created_after", "2025-01-01T00:00:00"),
    ({"created_after": "yesterday"}, "created_after", "yesterday"),
    ({"created_after": 1735689600}, "created_after", 1735689600),
    ({"created_after": B, "created_before": A}, "created_before", A),
    ({"page_size": 0}, "page_size", 0),
    ({"page_size": MAX_PAGE_SIZE + 1}, "page_size", 101),
    ({"page_size": True}, "page_size", True),
    ({"page_size": 10.0}, "page_size", 10.0),
    ({"page_size": "10"}, "page_size", "10"),
    ({"page_size": -5}, "page_size", -5),
    ({"type": "web"}, "type", "web"),  # android is mobile
    ({"type": "desktop"}, "type", "desktop"),
]


@pytest.mark.parametrize(
    ("overrides", "field", "value"), BAD_ARGUMENTS, ids=[f"{field}={value!r}" for _, field, value in BAD_ARGUMENTS]
)
def test_bad_arguments_name_the_field_and_value(overrides, field, value):
    kwargs: dict[str, Any] = {"platform": "android", "version_key": VK, **overrides}
    platform, version_key = kwargs.pop("platform"), kwargs.pop("version_key")

    with pytest.raises(DevRevInvalidInputError) as caught:
        session_query(platform, version_key, **kwargs)

    err = caught.value
    assert isinstance(err, ValueError)
    assert err.field_name == field
    assert err.value == value
    assert f"invalid {field}=" in str(err)
    assert repr(value)[:60] in str(err)


def test_type_must_match_web_platform_too():
    with pytest.raises(DevRevInvalidInputError) as caught:
        session_query("web", VK, type="mobile")
    assert caught.value.field_name == "type"
    assert "'web'" in str(caught.value)


def test_unknown_filter_lists_the_known_ones():
    with pytest.raises(DevRevInvalidInputError) as caught:
        validate_filters({"is_crahs": True}, "mobile")

    assert "is_crash" in str(caught.value)
    assert "has_rage_clicks" not in str(caught.value)  # only the mobile set is offered


def test_created_at_filter_points_to_the_bounds():
    with pytest.raises(DevRevInvalidInputError, match="created_after/created_before"):
        validate_filters({"created_at": {}}, "web")


def test_equal_bounds_are_an_empty_interval():
    query = session_query("android", VK, created_after=A, created_before=A)

    assert not query.in_interval(session_at(iso(A)))


@pytest.mark.parametrize("page_size", [1, MAX_PAGE_SIZE])
def test_page_size_limits_are_inclusive(page_size):
    assert session_query("android", VK, page_size=page_size).page_size == page_size


def test_every_filter_of_each_type_is_accepted():
    samples = {
        "boolean": True,
        "list of strings": ["x"],
        "object": {},
        "list of objects": [{"attribute_path": "plan"}],
    }
    for session_type, fields in FILTER_FIELDS.items():
        filters = {name: samples[kind] for name, kind in fields.items()}
        assert validate_filters(filters, session_type) == filters
        assert validate_filters(None, session_type) == {}


# -- times -------------------------------------------------------------------------------------------


def test_pendulum_bounds_are_accepted():
    after = pendulum.datetime(2025, 1, 1, tz="Europe/Paris")  # 2024-12-31T23:00:00Z
    before = pendulum.datetime(2025, 1, 1, 12, tz="UTC")

    query = session_query("android", VK, created_after=after, created_before=before)

    assert query.created_after == datetime(2024, 12, 31, 23, tzinfo=UTC)
    assert query.created_before == datetime(2025, 1, 1, 12, tzinfo=UTC)
    assert query.created_after.utcoffset() == timedelta(0)
    assert query.page_request().body["created_at"] == {
        "type": "range",
        "after": "2024-12-31T23:00:00.000000Z",
        "before": "2025-01-01T12:00:00.000000Z",
    }


@pytest.mark.parametrize(
    "text",
    ["2025-01-01T00:00:00Z", "2025-01-01T00:00:00.000Z", "2025-01-01T01:00:00+01:00", "2024-12-31T19:00:00-05:00"],
)
def test_iso_text_bounds_are_accepted(text):
    assert to_utc(text, "created_after") == datetime(2025, 1, 1, tzinfo=UTC)
    assert session_query("web", VK, created_after=text).created_after == datetime(2025, 1, 1, tzinfo=UTC)


def test_to_utc_passes_none_and_refuses_naive():
    assert to_utc(None, "created_after") is None
    with pytest.raises(DevRevInvalidInputError, match="timezone"):
        to_utc(datetime(2025, 1, 1), "created_after")


def test_format_timestamp_keeps_microseconds_and_says_z():
    assert format_timestamp(datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)) == "2025-01-02T03:04:05.000000Z"
    assert format_timestamp(datetime(2025, 1, 2, 3, 4, 5, 7, tzinfo=UTC)) == "2025-01-02T03:04:05.000007Z"
    east = timezone(timedelta(hours=5, minutes=30))
    assert format_timestamp(datetime(2025, 1, 2, 5, 30, tzinfo=east)) == "2025-01-02T00:00:00.000000Z"
    assert format_timestamp(pendulum.datetime(2025, 6, 1, 2, tz="Europe/Paris")) == "2025-06-01T00:00:00.000000Z"


# -- the half-open interval --------------------------------------------------------------------------


def test_in_interval_is_half_open():
    query = session_query("android", VK, created_after=A, created_before=B)
    ms = timedelta(milliseconds=1)

    assert query.in_interval(session_at(iso(A)))  # exactly at created_after: in
    assert query.in_interval(session_at("2025-03-01T00:00:00Z"))
    assert query.in_interval(session_at(iso(A + ms)))
    assert query.in_interval(session_at(iso(B - ms)))
    assert query.in_interval(session_at("2025-03-01T00:59:59.999999Z"))
    assert not query.in_interval(session_at(iso(B)))  # exactly at created_before: the next interval's
    assert not query.in_interval(session_at("2025-03-01T02:00:00.000+01:00"))  # the same instant as B
    assert not query.in_interval(session_at(iso(B + ms)))
    assert not query.in_interval(session_at(iso(A - ms)))


def test_in_interval_with_one_bound():
    only_before = session_query("android", VK, created_before=B)
    only_after = session_query("android", VK, created_after=A)

    assert only_before.in_interval(session_at("1970-01-01T00:00:00Z"))
    assert not only_before.in_interval(session_at(iso(B)))
    assert only_after.in_interval(session_at("2999-01-01T00:00:00Z"))
    assert only_after.in_interval(session_at(iso(A)))
    assert not only_after.in_interval(session_at(iso(A - timedelta(milliseconds=1))))


def test_in_interval_keeps_what_it_cannot_judge():
    query = session_query("android", VK, created_after=A, created_before=B)
    unbounded = session_query("android", VK)

    assert query.in_interval({"session_id": "no-created-at"})
    assert query.in_interval(session_at("not a date"))
    assert query.in_interval(session_at(12345))
    assert unbounded.in_interval(session_at(iso(B)))
    # A naive created_at is read as UTC.
    assert not query.in_interval(session_at("2025-03-01T01:00:00"))
    assert query.in_interval(session_at("2025-03-01T00:00:00"))


def test_consecutive_intervals_partition_time():
    edges = [A + timedelta(minutes=10 * i) for i in range(4)]
    queries = [session_query("ios", VK, created_after=lo, created_before=hi) for lo, hi in itertools.pairwise(edges)]
    moments = [A + timedelta(milliseconds=step * 7_919) for step in range(-50, 4_000)] + edges
    ms = timedelta(milliseconds=1)
    moments += [edge + delta for edge in edges for delta in (-ms, ms)]

    for moment in moments:
        hits = sum(query.in_interval(session_at(iso(moment))) for query in queries)
        expected = 1 if edges[0] <= moment < edges[-1] else 0
        assert hits == expected, iso(moment)


# -- pages -------------------------------------------------------------------------------------------

LIST_GET = ApiRequest("GET", SESSIONS_LIST_PATH)


def test_parse_page_reads_sessions_and_cursor():
    sessions = [session_at("2025-01-01T00:00:00Z", "a"), session_at("2025-01-01T00:00:01Z", "b")]

    page = parse_page(LIST_GET, {"sessions": sessions, "next_cursor": "n1", "prev_cursor": "p0", "new_field": 1})

    assert page == SessionPage(sessions, "n1")
    assert parse_page(LIST_GET, {"sessions": []}) == SessionPage([], None)
    assert parse_page(LIST_GET, {"sessions": sessions, "next_cursor": None}).next_cursor is None
    # An empty cursor cannot be sent back: it ends the listing rather than restarting it.
    assert parse_page(LIST_GET, {"sessions": [], "next_cursor": ""}).next_cursor is None


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"session": {}},
        {"sessions": None},
        {"sessions": "[]"},
        {"sessions": {"a": {}}},
        {"sessions": [1, 2]},
        {"sessions": [{}, "x"]},
        {"sessions": [None]},
        {"sessions": [], "next_cursor": 5},
        {"sessions": [], "next_cursor": ["c"]},
        {"sessions": [], "next_cursor": {"c": 1}},
    ],
)
def test_parse_page_rejects_malformed_bodies(payload):
    request = session_query("android", VK, created_after=A).page_request()

    with pytest.raises(DevRevUnexpectedResponseError) as caught:
        parse_page(request, payload)

    assert caught.value.status_code == 200
    assert "POST /observability.sessions.list" in str(caught.value)


# -- seen sessions -----------------------------------------------------------------------------------

T0 = 1_750_000_000.0  # 2025-06-15T15:06:40Z
DAY = 86_400.0


def created(seconds: float, session_id: str) -> dict[str, Any]:
    return session_at(datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z"), session_id)


def test_seen_sessions_remember_until_lookback_after_created_at():
    seen = SeenSessions()
    seen.add(created(T0, "a"), lookback=DAY, now=T0 + 3_600)
    seen.add(created(T0 + 600, "b"), lookback=DAY, now=T0 + 3_600)

    assert "a" in seen
    assert "b" in seen
    assert "c" not in seen
    assert len(seen) == 2
    seen.forget_expired(T0 + DAY - 1)
    assert ("a" in seen, "b" in seen) == (True, True)
    seen.forget_expired(T0 + DAY)  # a expires exactly now: no listing over the lookback can return it
    assert ("a" in seen, "b" in seen) == (False, True)
    seen.forget_expired(T0 + DAY + 600)
    assert len(seen) == 0


def test_seen_sessions_without_created_at_count_from_now():
    seen = SeenSessions()
    seen.add({"session_id": "x"}, lookback=100.0, now=T0)
    seen.add(session_at("garbage", "y"), lookback=100.0, now=T0)

    seen.forget_expired(T0 + 99)
    assert ("x" in seen, "y" in seen) == (True, True)
    seen.forget_expired(T0 + 100)
    assert len(seen) == 0


def test_seen_sessions_older_than_the_lookback_are_not_kept():
    seen = SeenSessions()
    seen.add(created(T0 - 10 * DAY, "old"), lookback=DAY, now=T0)

    assert "old" in seen
    seen.forget_expired(T0)
    assert "old" not in seen


def test_seen_sessions_re_adding_extends():
    seen = SeenSessions()
    seen.add({"session_id": "x"}, lookback=100.0, now=T0)
    seen.add({"session_id": "x"}, lookback=100.0, now=T0 + 50)

    seen.forget_expired(T0 + 120)
    assert "x" in seen
    assert len(seen) == 1


def test_seen_sessions_json_round_trip():
    seen = SeenSessions()
    seen.add(created(T0, "a"), lookback=DAY, now=T0)
    seen.add(created(T0 + 0.4, "b"), lookback=DAY, now=T0)

    state = seen.to_json()
    restored = SeenSessions.from_json(json.loads(json.dumps(state)))

    assert state == {"version": 1, "expiries": {"a": math.ceil(T0 + DAY), "b": math.ceil(T0 + DAY + 0.4)}}
    assert restored is not None
    assert ("a" in restored, "b" in restored, len(restored)) == (True, True, 2)
    # Rounded up, never down: "b" can still be listed until T0 + DAY + 0.4, so it must not be forgotten yet.
    restored.forget_expired(T0 + DAY)
    assert ("a" in restored, "b" in restored) == (math.ceil(T0 + DAY) > T0 + DAY, True)
    restored.forget_expired(T0 + DAY + 1)
    assert len(restored) == 0
    assert SeenSessions.from_json(SeenSessions().to_json()) is not None


@pytest.mark.parametrize(
    "state",
    [
        None,
        "",
        "{}",
        [],
        {},
        {"version": 2, "expiries": {}},
        {"version": "1", "expiries": {}},
        {"version": 1},
        {"version": 1, "expiries": None},
        {"version": 1, "expiries": ["a"]},
        {"version": 1, "expiries": {"a": "tomorrow"}},
        {"version": 1, "expiries": {"a": None}},
        {"version": 1, "expiries": {"a": True}},
        {"version": 1, "expiries": {"a": [1]}},
    ],
)
def test_seen_sessions_damaged_state_is_none(state):
    assert SeenSessions.from_json(state) is None


# -- against the contract (openapi.yaml) -------------------------------------------------------------

AUTH = {"Authorization": "Bearer test-token"}
BASE = "http://127.0.0.1:9"  # matches the spec's templated server; nothing is sent


@cache
def openapi() -> OpenAPI:
    return OpenAPI.from_file_path(str(find_spec()))


def contract_errors(request: ApiRequest) -> list[str]:
    """openapi-core's complaints about ``request`` as the hook would send it (empty when valid)."""
    prepared = requests.Request(request.method, request.url(BASE), json=request.body, headers=AUTH).prepare()
    try:
        openapi().validate_request(RequestsOpenAPIRequest(prepared))
    except OpenAPIError as err:
        cause = err.__cause__
        return [repr(err), repr(cause)]
    return []


def spec_filter_properties(session_type: str) -> dict[str, Any]:
    properties: dict[str, Any] = spec_dict()["components"]["schemas"][f"{session_type}-sessions-filter"]["properties"]
    return properties


def test_the_spec_is_there_and_declares_the_list_request():
    schemas = spec_dict()["components"]["schemas"]
    request_schema = schemas["observability-sessions-list-request"]

    assert set(request_schema["required"]) == {"type", "platform", "version_key"}
    assert request_schema["discriminator"]["mapping"] == {
        "mobile": "#/components/schemas/mobile-sessions-filter",
        "web": "#/components/schemas/web-sessions-filter",
    }


@pytest.mark.parametrize("session_type", ["mobile", "web"])
def test_filter_fields_are_exactly_the_contracts(session_type):
    """FILTER_FIELDS names every filter the contract defines (but created_at) with its JSON type."""
    properties = spec_filter_properties(session_type)

    def kind(schema: dict[str, Any]) -> str:
        if schema.get("type") == "boolean":
            return "boolean"
        if schema.get("type") == "array":
            return "list of strings" if schema["items"].get("type") == "string" else "list of objects"
        assert "$ref" in schema, schema
        return "object"

    expected = {name: kind(schema) for name, schema in properties.items() if name != "created_at"}
    assert FILTER_FIELDS[session_type] == expected
    assert properties["created_at"] == {"$ref": "#/components/schemas/date-filter"}


def test_contract_validation_is_not_vacuous():
    good = session_query("android", VK, created_after=A).page_request()
    assert contract_errors(good) == []
    for bad_body in (
        {**good.body, "created_at": {"type": "range", "after": "2025-03-01 00:00"}},
        {**good.body, "is_crash": "yes"},
        {**good.body, "limit": "ten"},
        {**good.body, "version_key": ""},
        {key: value for key, value in good.body.items() if key != "type"},
        {**good.body, "type": "desktop"},
        {**good.body, "platform": "windows"},
    ):
        assert contract_errors(ApiRequest("POST", SESSIONS_LIST_PATH, body=bad_body)), bad_body
    assert contract_errors(ApiRequest("GET", SESSIONS_LIST_PATH, query=(("platform", "android"),)))


# A valid value for every filter, per the contract's schemas; object filters get realistic content.
FILTER_SAMPLES: dict[str, dict[str, Any]] = {
    "mobile": {
        "is_crash": True,
        "is_anr": False,
        "rage_tap": True,
        "has_exception_occurred": False,
        "is_anonymous": True,
        "app_version": ["5.2.0", "5.2.1"],
        "os_version": ["14"],
        "device_model": ["Pixel 8"],
        "manufacturer": ["Google"],
        "network_type": ["wifi"],
        "rev_org": ["REV-AbCdEfGh"],
        "rev_user": ["REVU-ABCDEFGH"],
        "screen_name": ["Checkout"],
        "session_duration": {"min_ms": 0, "max_ms": 600_000},
        "custom_events": {"event_name": ["purchase"], "exception_class_name": ["java.lang.NullPointerException"]},
        "response_time_list": {"api_name": ["/cart"]},
        "session_attributes": [
            {"attribute_path": "plan", "filter_type": "string_filter", "equals": ["pro"]},
            {"attribute_path": "beta", "filter_type": "bool_filter", "equals": True},
        ],
    },
    "web": {
        "has_console_errors": True,
        "has_dead_clicks": False,
        "has_network_errors": True,
        "has_rage_clicks": True,
        "is_anonymous": False,
        "browser": ["Chrome"],
        "browser_version": ["125.0.6422.142"],
        "device_type": ["desktop"],
        "network_type": ["wifi"],
        "os": ["macOS"],
        "page_name": ["Checkout"],
        "page_url": ["https://shop.acme.example/cart"],
        "normalized_url": ["https://shop.acme.example/cart"],
        "rev_org": ["REV-AbCdEfGh"],
        "rev_user": ["REVU-ABCDEFGH"],
        "session_duration": {"min_ms": 1},
        "console_logs": {"log_type": ["error"], "body": ["TypeError"]},
        "custom_events": {"event_name": ["signup"]},
        "events": {"is_rage": True, "value": ["Buy now"]},
        "network_logs": {"request_method": ["POST"], "response_status": [500, 502]},
        "session_attributes": [{"attribute_path": "locale", "filter_type": "string_filter", "contains": ["en"]}],
    },
}


def test_filter_samples_cover_every_filter():
    assert {kind: set(samples) for kind, samples in FILTER_SAMPLES.items()} == {
        kind: set(fields) for kind, fields in FILTER_FIELDS.items()
    }


@pytest.mark.parametrize("platform", ["android", "ios", "web"])
def test_every_filter_at_once_makes_a_contract_valid_body(platform):
    session_type = "web" if platform == "web" else "mobile"
    query = session_query(
        platform,
        VK,
        filters=FILTER_SAMPLES[session_type],
        created_after=pendulum.datetime(2025, 3, 1, tz="America/New_York"),
        created_before="2025-03-02T00:00:00.000001+00:00",
        page_size=MAX_PAGE_SIZE,
    )

    for cursor in (None, "eyJzIjoiY3JlYXRlZF9hdDphc2MifQ"):
        request = query.page_request(cursor)
        assert request.method == "POST"
        assert contract_errors(request) == []
        # Every field sent is one the contract declares for this type (its filter schemas are open, so the
        # validator alone would let a misspelt one through).
        declared = set(spec_dict()["components"]["schemas"]["observability-sessions-list-request"]["properties"])
        assert set(request.body) <= declared | set(spec_filter_properties(session_type))


aware_datetimes = st.datetimes(
    min_value=datetime(2000, 1, 2),
    max_value=datetime(2099, 12, 30),
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-8))]),
)


@st.composite
def queries(draw: st.DrawFn) -> tuple[dict[str, Any], str | None]:
    platform = draw(st.sampled_from(["android", "ios", "web"]))
    session_type = "web" if platform == "web" else "mobile"
    names = draw(st.sets(st.sampled_from(sorted(FILTER_SAMPLES[session_type]))))
    bounds = sorted(draw(st.lists(aware_datetimes, max_size=2)), key=lambda moment: moment.astimezone(UTC))
    after = before = None
    if len(bounds) == 2:
        after, before = bounds
    elif bounds:
        after, before = (bounds[0], None) if draw(st.booleans()) else (None, bounds[0])
    kwargs = {
        "platform": platform,
        # Surrounding whitespace is refused (tests/reliability/test_fuzz.py); inner whitespace is legal.
        "version_key": draw(
            st.text(st.characters(blacklist_categories=("Cs",)), min_size=1).map(str.strip).filter(bool)
        ),
        "filters": {name: FILTER_SAMPLES[session_type][name] for name in names},
        "created_after": after if after is None or draw(st.booleans()) else after.isoformat(),
        "created_before": before,
        "page_size": draw(st.none() | st.integers(1, MAX_PAGE_SIZE)),
    }
    cursor = draw(st.none() | st.text(st.characters(blacklist_categories=("Cs",)), min_size=1))
    return kwargs, cursor


@pytest.mark.property
@sized(150, suppress_health_check=[HealthCheck.too_slow])
@given(queries())
def test_every_request_page_request_builds_is_contract_valid(case):
    kwargs, cursor = case
    platform, version_key = kwargs.pop("platform"), kwargs.pop("version_key")
    query = session_query(platform, version_key, **kwargs)

    request = query.page_request(cursor)

    assert contract_errors(request) == []
    assert request.method == ("POST" if query.uses_post else "GET")
    if request.body is not None:
        assert request.body["type"] == query.session_type
        assert request.body.get("cursor") == cursor
        if query.created_after is not None:
            after = datetime.strptime(request.body["created_at"]["after"], "%Y-%m-%dT%H:%M:%S.%fZ")
            assert after.replace(tzinfo=UTC) == query.created_after  # nothing lost, not even microseconds
