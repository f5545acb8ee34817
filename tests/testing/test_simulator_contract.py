"""The simulator against the contract: real HTTP exchanges validated by openapi-core.

Every kind of contract response the simulator produces is requested for real over 127.0.0.1 and the
(request, response) pair is validated against the contract shipped in the package
(``airflow_provider_devrev/testing/contract/openapi.yaml``): status declared for the operation, body schema
including discriminators and formats, declared headers. The spec's templated server ``{protocol}://{hostname}``
matches the simulator's ``http://127.0.0.1:PORT``, so the file is used unmodified. Where a case's request is
itself contract-valid (or deliberately not), that is checked too,
so a 400 from the simulator agrees with what the contract rejects.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import requests
import yaml
from hypothesis import HealthCheck, given
from hypothesis import strategies as st
from openapi_core import OpenAPI
from openapi_core.contrib.requests import RequestsOpenAPIRequest, RequestsOpenAPIResponse
from openapi_core.exceptions import OpenAPIError
from openapi_schema_validator import OAS30Validator, oas30_format_checker

from airflow_provider_devrev.testing import DevRevSimulator
from airflow_provider_devrev.testing.contract import openapi_path
from airflow_provider_devrev.testing.data import (
    SEED_ANDROID_SESSION_ID,
    SEED_IOS_SESSION_ID,
    SEED_PREVIOUS_VERSION_KEY,
    SEED_VERSION_KEY,
    SEED_WEB_SESSION_ID,
    SEED_WEB_VERSION_KEY,
    make_session,
    seed_sessions,
)
from tests.properties import sized

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

GET = "/observability.sessions.get"
LIST = "/observability.sessions.list"
SELF = "/dev-users.self"
DATA = "/observability.sessions.data.get"
INFO = "/observability.sessions.developer-info.get"


def find_spec() -> Path:
    """The contract shipped inside the installed provider (``airflow_provider_devrev/testing/contract``).

    A missing file fails the test with the path it was expected at: a wheel without it is broken.
    """
    try:
        return openapi_path()
    except FileNotFoundError as missing:
        pytest.fail(str(missing))


@cache
def spec_dict() -> dict[str, Any]:
    with find_spec().open(encoding="utf-8") as handle:
        loaded: dict[str, Any] = yaml.safe_load(handle)
    return loaded


@cache
def session_validator() -> OAS30Validator:
    schema = {"$ref": "#/components/schemas/observability-session", "components": spec_dict()["components"]}
    return OAS30Validator(schema, format_checker=oas30_format_checker)


def assert_valid_session(session: dict[str, Any]) -> None:
    errors = [error.message for error in session_validator().iter_errors(session)]
    assert not errors, f"{session.get('session_id')}: {errors}"


@pytest.fixture(scope="module")
def openapi() -> OpenAPI:
    return OpenAPI.from_file_path(str(find_spec()))


@pytest.fixture
def simulator() -> Iterator[DevRevSimulator]:
    with DevRevSimulator(seed=0) as sim:
        yield sim


# -- every exchange kind -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    id: str
    method: str
    path: str
    status: int
    error_type: str | None = None
    params: dict[str, Any] | None = None
    json: Any = None
    data: bytes | None = None
    auth: str | None = "token"  # "token", None (no header) or a literal header value
    prepare: Callable[[DevRevSimulator], dict[str, Any]] | None = None  # returns params/json additions
    request_valid: bool | None = True  # None: not checked
    check: Callable[[dict[str, Any]], None] | None = None
    simulator_kwargs: dict[str, Any] = field(default_factory=dict)


ANDROID = {"platform": "android", "session_id": SEED_ANDROID_SESSION_ID, "version_key": SEED_VERSION_KEY}
IOS = {"platform": "ios", "session_id": SEED_IOS_SESSION_ID, "version_key": SEED_VERSION_KEY}
WEB = {"platform": "web", "session_id": SEED_WEB_SESSION_ID, "version_key": SEED_WEB_VERSION_KEY}
ANDROID_LIST: dict[str, Any] = {"platform": "android", "version_key": SEED_VERSION_KEY}
WEB_LIST: dict[str, Any] = {"platform": "web", "version_key": SEED_WEB_VERSION_KEY}


def _first_cursor(sim: DevRevSimulator) -> dict[str, Any]:
    first = requests.get(
        sim.url + LIST,
        params={**ANDROID_LIST, "limit": 3},
        headers={"Authorization": f"Bearer {sim.token}"},
        timeout=10,
    ).json()
    return {"cursor": first["next_cursor"]}


def _made(kind: str, platform: str) -> Callable[[DevRevSimulator], dict[str, Any]]:
    def prepare(sim: DevRevSimulator) -> dict[str, Any]:
        session = sim.add_session(sim.make_session(kind, platform=platform), version_key="made@1.0.0")
        return {"platform": platform, "session_id": session["session_id"], "version_key": "made@1.0.0"}

    return prepare


def _has(*keys: str, absent: tuple[str, ...] = ()) -> Callable[[dict[str, Any]], None]:
    def check(body: dict[str, Any]) -> None:
        assert all(key in body for key in keys), body.keys()
        assert not any(key in body for key in absent), body.keys()

    return check


def _revoke(sim: DevRevSimulator) -> dict[str, Any]:
    sim.revoke_token()
    return {}


def _fault(kind: str, **params: Any) -> Callable[[DevRevSimulator], dict[str, Any]]:
    def prepare(sim: DevRevSimulator) -> dict[str, Any]:
        sim.add_fault(kind, **params)
        return {}

    return prepare


WEB_TAB = next(s for _, s in seed_sessions(0) if s["session_id"] == SEED_WEB_SESSION_ID)["tab_ids"][0]
CRASH_RECORDING = {
    "session_id": SEED_ANDROID_SESSION_ID,
    "version_key": SEED_VERSION_KEY,
    "recording_id": "rec_a11d0c4a5402",
}
IOS_RECORDING = {"session_id": SEED_IOS_SESSION_ID, "version_key": SEED_VERSION_KEY, "recording_id": "rec_105a9e7a0001"}
WEB_TAB_DATA = {"session_id": SEED_WEB_SESSION_ID, "version_key": SEED_WEB_VERSION_KEY, "tab_id": WEB_TAB}


def _made_recording(platform: str, **overrides: Any) -> Callable[[DevRevSimulator], dict[str, Any]]:
    def prepare(sim: DevRevSimulator) -> dict[str, Any]:
        kind = "web" if platform == "web" else "mobile"
        session = sim.add_session(sim.make_session(kind, platform=platform, **overrides), version_key="made@1.0.0")
        key = {"tab_id": session["tab_ids"][-1]} if kind == "web" else {"recording_id": session["recording_ids"][-1]}
        return {"session_id": session["session_id"], "version_key": "made@1.0.0", **key}

    return prepare


def _inflated(sim: DevRevSimulator) -> dict[str, Any]:
    sim.inflate_recording(SEED_ANDROID_SESSION_ID, 2_000_000)
    return {}


def _pending_recording(sim: DevRevSimulator) -> dict[str, Any]:
    session = sim.add_session(sim.make_session("mobile"), version_key="late@1", appear_after_requests=3)
    return {"session_id": session["session_id"], "version_key": "late@1", "recording_id": session["recording_ids"][0]}


def _pending(sim: DevRevSimulator) -> dict[str, Any]:
    session = sim.add_session(sim.make_session("web"), version_key="late@1", appear_after_requests=3)
    return {"platform": "web", "session_id": session["session_id"], "version_key": "late@1"}


CASES = [
    # 200 sessions.get
    Case("get-android-GET", "GET", GET, 200, params=ANDROID),
    Case("get-ios-GET", "GET", GET, 200, params=IOS),
    Case("get-web-GET", "GET", GET, 200, params=WEB),
    Case("get-android-POST", "POST", GET, 200, json=ANDROID),
    Case("get-ios-POST", "POST", GET, 200, json=IOS),
    Case("get-web-POST", "POST", GET, 200, json=WEB),
    Case("get-made-android", "GET", GET, 200, prepare=_made("mobile", "android")),
    Case("get-made-ios-POST", "POST", GET, 200, prepare=_made("mobile", "ios")),
    Case("get-made-web", "GET", GET, 200, prepare=_made("web", "web")),
    # 200 sessions.list
    Case(
        "list-GET-first-page",
        "GET",
        LIST,
        200,
        params={**ANDROID_LIST, "limit": 3},
        check=_has("next_cursor"),
    ),
    Case(
        "list-GET-last-page",
        "GET",
        LIST,
        200,
        params={**ANDROID_LIST, "limit": 100},
        check=_has("sessions", absent=("next_cursor", "prev_cursor")),
    ),
    Case(
        "list-GET-second-page",
        "GET",
        LIST,
        200,
        params={**ANDROID_LIST, "limit": 3},
        prepare=_first_cursor,
        check=_has("next_cursor", "prev_cursor"),
    ),
    Case("list-GET-mode-before", "GET", LIST, 200, params={**WEB_LIST, "mode": "before", "limit": 4}),
    Case(
        "list-GET-sort-by",
        "GET",
        LIST,
        200,
        params={**ANDROID_LIST, "sort_by": "session_duration_ms:desc,created_at"},
    ),
    Case(
        "list-GET-default-page-size",
        "GET",
        LIST,
        200,
        params={"platform": "ios", "version_key": SEED_VERSION_KEY},
    ),
    Case(
        "list-POST-mobile-filters",
        "POST",
        LIST,
        200,
        json={
            "type": "mobile",
            **ANDROID_LIST,
            "limit": 2,
            "is_crash": False,
            "is_anr": False,
            "rage_tap": False,
            "has_exception_occurred": False,
            "app_version": ["5.2.0"],
            "os_version": ["12", "13", "14"],
            "created_at": {
                "type": "range",
                "after": "2025-05-01T00:00:00Z",
                "before": "2025-06-03T00:00:00Z",
            },
            "session_duration": {"min_ms": 0, "max_ms": 3_600_000},
        },
    ),
    Case(
        "list-POST-web-filters",
        "POST",
        LIST,
        200,
        json={
            "type": "web",
            **WEB_LIST,
            "has_rage_clicks": True,
            "has_console_errors": True,
            "browser": ["Chrome", "Safari", "Firefox", "Edge"],
        },
    ),
    Case(
        "list-POST-preset-no-match",
        "POST",
        LIST,
        200,
        json={
            "type": "mobile",
            "platform": "ios",
            "version_key": SEED_PREVIOUS_VERSION_KEY,
            "created_at": {"type": "preset", "preset_type": "next_n_days", "days": 1},
        },
        check=lambda body: assert_equal(body["sessions"], []),
    ),
    Case(
        "list-GET-rate-limit-headers",
        "GET",
        LIST,
        200,
        params=WEB_LIST,
        simulator_kwargs={"rate_limit": (100, 60.0)},
    ),
    # 200 sessions.data.get: every platform, both forms
    Case(
        "data-android-crash-GET",
        "GET",
        DATA,
        200,
        params=CRASH_RECORDING,
        check=lambda body: assert_equal(body["recording_events_timeline"][-1]["event_name"], "exception"),
    ),
    Case("data-ios-POST", "POST", DATA, 200, json=IOS_RECORDING),
    Case("data-web-tab-GET", "GET", DATA, 200, params=WEB_TAB_DATA, check=_has("timeline_data", "replay_data")),
    Case("data-web-tab-POST", "POST", DATA, 200, json=WEB_TAB_DATA),
    Case(
        "data-made-ios-crash",
        "GET",
        DATA,
        200,
        prepare=_made_recording("ios", is_crash=True),
        check=lambda body: assert_equal(body["observability_sessions_log_data"]["value"][:19], "Incident Identifier"),
    ),
    Case(
        "data-made-android-anr-POST",
        "POST",
        DATA,
        200,
        prepare=_made_recording("android", is_crash=False, is_anr=True),
        check=lambda body: assert_equal(body["recording_events_timeline"][-1]["event_name"], "anr"),
    ),
    Case("data-made-web", "GET", DATA, 200, prepare=_made_recording("web")),
    Case(
        "data-inflated-chunked",
        "GET",
        DATA,
        200,
        params=CRASH_RECORDING,
        prepare=_inflated,
        check=lambda body: assert_equal(len(json.dumps(body)) > 2_000_000, True),
    ),
    # 200 sessions.developer-info.get (POST only)
    Case(
        "developer-info-POST",
        "POST",
        INFO,
        200,
        json=WEB_TAB_DATA,
        check=lambda body: assert_equal(sum(item["type"] == "error" for item in body["console_data"]), 3),
    ),
    Case("developer-info-made-web", "POST", INFO, 200, prepare=_made_recording("web")),
    # 200 dev-users.self
    Case("dev-users-self", "GET", SELF, 200, check=lambda body: assert_equal(body["dev_user"]["id"], "DEVU-1")),
    # 400
    Case(
        "400-missing-GET",
        "GET",
        GET,
        400,
        "missing_required_field",
        params={"platform": "ios", "version_key": "v"},
        request_valid=False,
    ),
    Case(
        "400-missing-POST",
        "POST",
        GET,
        400,
        "missing_required_field",
        json={"platform": "ios", "session_id": "s"},
        request_valid=False,
    ),
    Case(
        "400-missing-list-type",
        "POST",
        LIST,
        400,
        "missing_required_field",
        json=ANDROID_LIST,
        request_valid=False,
    ),
    Case(
        "400-empty-session-id",
        "GET",
        GET,
        400,
        "invalid_field",
        params={**IOS, "session_id": ""},
        request_valid=False,
    ),
    Case(
        "400-empty-version-key-POST",
        "POST",
        GET,
        400,
        "invalid_field",
        json={**IOS, "version_key": ""},
        request_valid=False,
    ),
    Case(
        "400-limit-not-int",
        "GET",
        LIST,
        400,
        "invalid_field",
        params={**ANDROID_LIST, "limit": "ten"},
        request_valid=False,
    ),
    Case(
        "400-limit-zero",
        "GET",
        LIST,
        400,
        "invalid_field",
        params={**ANDROID_LIST, "limit": 0},
        request_valid=None,
    ),
    Case("400-bad-cursor", "GET", LIST, 400, "invalid_field", params={**ANDROID_LIST, "cursor": "garbage!"}),
    Case(
        "400-bad-date",
        "POST",
        LIST,
        400,
        "invalid_field",
        json={"type": "web", **WEB_LIST, "created_at": {"type": "range", "after": "yesterday"}},
        request_valid=False,
    ),
    Case(
        "400-enum-platform",
        "GET",
        GET,
        400,
        "invalid_enum_value",
        params={**IOS, "platform": "windows"},
        request_valid=False,
        check=lambda body: assert_equal(body["allowed_values"], ["android", "ios", "web"]),
    ),
    Case(
        "400-enum-platform-POST",
        "POST",
        LIST,
        400,
        "invalid_enum_value",
        json={"type": "mobile", "platform": "symbian", "version_key": "v"},
        request_valid=False,
    ),
    Case(
        "400-enum-mode",
        "GET",
        LIST,
        400,
        "invalid_enum_value",
        params={**WEB_LIST, "mode": "sideways"},
        request_valid=False,
    ),
    Case(
        "400-enum-list-type",
        "POST",
        LIST,
        400,
        "invalid_enum_value",
        json={**WEB_LIST, "type": "desktop"},
        request_valid=False,
    ),
    Case("400-parse-error", "POST", GET, 400, "parse_error", data=b"{not json", request_valid=None),
    Case("400-parse-error-array", "POST", LIST, 400, "parse_error", json=[ANDROID_LIST], request_valid=False),
    Case(
        "400-unexpected-json-type",
        "POST",
        GET,
        400,
        "unexpected_json_type",
        json={**IOS, "session_id": 123},
        request_valid=False,
        check=lambda body: assert_equal((body["expected"], body["actual"]), ("string", "number")),
    ),
    Case(
        "400-unexpected-json-type-filter",
        "POST",
        LIST,
        400,
        "unexpected_json_type",
        json={"type": "mobile", **ANDROID_LIST, "is_crash": "yes"},
        request_valid=False,
    ),
    Case(
        "400-platform-type-mismatch",
        "POST",
        LIST,
        400,
        "value_not_permitted",
        json={"type": "mobile", **WEB_LIST},
    ),
    Case(
        "400-sort-by-unknown",
        "GET",
        LIST,
        400,
        "value_not_permitted",
        params={**WEB_LIST, "sort_by": "color"},
    ),
    Case(
        "400-unsupported-filter",
        "POST",
        LIST,
        400,
        "bad_request",
        json={"type": "web", **WEB_LIST, "page_name": ["Checkout"]},
    ),
    Case(
        "400-data-neither-id",
        "GET",
        DATA,
        400,
        "missing_required_field",
        params={"session_id": SEED_ANDROID_SESSION_ID, "version_key": SEED_VERSION_KEY},
    ),
    Case("400-data-both-ids", "POST", DATA, 400, "bad_request", json={**CRASH_RECORDING, "tab_id": WEB_TAB}),
    Case(
        "400-data-missing-version-key",
        "POST",
        DATA,
        400,
        "missing_required_field",
        json={"session_id": SEED_ANDROID_SESSION_ID, "recording_id": "r"},
        request_valid=False,
    ),
    Case(
        "400-developer-info-missing-tab",
        "POST",
        INFO,
        400,
        "missing_required_field",
        json={"session_id": SEED_WEB_SESSION_ID, "version_key": SEED_WEB_VERSION_KEY},
        request_valid=False,
    ),
    Case(
        "400-developer-info-unknown-session",
        "POST",
        INFO,
        400,
        "invalid_id",
        json={**WEB_TAB_DATA, "session_id": "no-such-session"},
        check=lambda body: assert_equal(body["field_name"], "session_id"),
    ),
    Case(
        "400-developer-info-unknown-tab",
        "POST",
        INFO,
        400,
        "invalid_id",
        json={**WEB_TAB_DATA, "tab_id": "tab_nope"},
        check=lambda body: assert_equal(body["field_name"], "tab_id"),
    ),
    Case(
        "400-developer-info-mobile-session",
        "POST",
        INFO,
        400,
        "invalid_id",
        json={"session_id": SEED_ANDROID_SESSION_ID, "version_key": SEED_VERSION_KEY, "tab_id": "t"},
    ),
    Case("400-developer-info-parse-error", "POST", INFO, 400, "parse_error", data=b"[", request_valid=None),
    # 401
    Case("401-data", "GET", DATA, 401, "unauthenticated", params=CRASH_RECORDING, auth="Bearer nope"),
    Case("401-developer-info-revoked", "POST", INFO, 401, "token_revoked", json=WEB_TAB_DATA, prepare=_revoke),
    # 401
    Case("401-no-header", "GET", GET, 401, "unauthenticated", params=ANDROID, auth=None, request_valid=False),
    Case("401-wrong-token", "GET", LIST, 401, "unauthenticated", params=ANDROID_LIST, auth="Bearer nope"),
    Case("401-basic-scheme", "GET", SELF, 401, "unauthenticated", auth="Basic dXNlcjpwYXNz", request_valid=None),
    Case("401-revoked", "POST", GET, 401, "token_revoked", json=ANDROID, prepare=_revoke),
    Case("401-revoked-fault", "GET", SELF, 401, "token_revoked", prepare=_fault("revoked")),
    # 404
    Case(
        "404-unknown-session",
        "GET",
        GET,
        404,
        "not_found",
        params={**ANDROID, "session_id": "no-such-session"},
    ),
    Case("404-wrong-platform", "POST", GET, 404, "not_found", json={**ANDROID, "platform": "ios"}),
    Case("404-wrong-version-key", "GET", GET, 404, "not_found", params={**WEB, "version_key": SEED_VERSION_KEY}),
    Case("404-not-yet-appeared", "GET", GET, 404, "not_found", prepare=_pending),
    Case(
        "404-data-unknown-recording",
        "GET",
        DATA,
        404,
        "not_found",
        params={**CRASH_RECORDING, "recording_id": "rec_nope"},
    ),
    Case("404-data-unknown-session", "POST", DATA, 404, "not_found", json={**WEB_TAB_DATA, "session_id": "nope"}),
    Case(
        "404-data-tab-of-mobile",
        "GET",
        DATA,
        404,
        "not_found",
        params={**IOS_RECORDING, "recording_id": None, "tab_id": "t"},
    ),
    Case("404-data-not-yet-appeared", "GET", DATA, 404, "not_found", prepare=_pending_recording),
    # 413
    Case(
        "413-too-large",
        "POST",
        GET,
        413,
        "request_entity_too_large",
        json={**ANDROID, "session_id": "x" * (1 << 20)},
        request_valid=None,
    ),
    # 429
    Case(
        "429-fault",
        "GET",
        GET,
        429,
        "too_many_requests",
        params=ANDROID,
        prepare=_fault("rate_limit", retry_after=2),
        check=lambda body: assert_equal(body["retry_after"], 2),
    ),
    Case(
        "429-fault-fractional",
        "POST",
        LIST,
        429,
        "too_many_requests",
        json={"type": "web", **WEB_LIST},
        prepare=_fault("rate_limit", retry_after=0.25),
    ),
    Case(
        "429-fault-no-body-field",
        "GET",
        SELF,
        429,
        "too_many_requests",
        prepare=_fault("rate_limit", body_retry_after=None),
    ),
    Case(
        "429-rate-limit-option",
        "GET",
        SELF,
        429,
        "too_many_requests",
        prepare=lambda sim: _exhaust(sim),
        simulator_kwargs={"rate_limit": (1, 600.0)},
    ),
    Case(
        "429-data",
        "GET",
        DATA,
        429,
        "too_many_requests",
        params=CRASH_RECORDING,
        prepare=_fault("rate_limit", retry_after=3),
    ),
    Case(
        "429-developer-info",
        "POST",
        INFO,
        429,
        "too_many_requests",
        json=WEB_TAB_DATA,
        prepare=_fault("rate_limit", retry_after=1),
    ),
    # 500 / 503
    Case("500-get", "GET", GET, 500, "internal_error", params=ANDROID, prepare=_fault("server_error")),
    Case(
        "500-list-reference",
        "POST",
        LIST,
        500,
        "internal_error",
        json={"type": "mobile", **ANDROID_LIST},
        prepare=_fault("server_error", reference_id="ref-1234"),
        check=lambda body: assert_equal(body["reference_id"], "ref-1234"),
    ),
    Case("503-self", "GET", SELF, 503, "service_unavailable", prepare=_fault("server_error", status=503)),
    Case("500-data", "POST", DATA, 500, "internal_error", json=IOS_RECORDING, prepare=_fault("server_error")),
    Case(
        "503-developer-info",
        "POST",
        INFO,
        503,
        "service_unavailable",
        json=WEB_TAB_DATA,
        prepare=_fault("server_error", status=503),
    ),
    Case(
        "413-developer-info",
        "POST",
        INFO,
        413,
        "request_entity_too_large",
        json={**WEB_TAB_DATA, "session_id": "x" * (1 << 20)},
        request_valid=None,
    ),
    # the "status" fault with contract-valid bodies
    Case(
        "status-403",
        "GET",
        GET,
        403,
        "forbidden",
        params=IOS,
        prepare=_fault("status", status=403, body={"type": "forbidden", "message": "no access"}),
    ),
    Case(
        "status-401-expired",
        "GET",
        LIST,
        401,
        "token_expired",
        params=WEB_LIST,
        prepare=_fault("status", status=401, body={"type": "token_expired"}),
    ),
    Case(
        "status-400-value-not-permitted",
        "POST",
        GET,
        400,
        "value_not_permitted",
        json=WEB,
        prepare=_fault(
            "status",
            status=400,
            body={"type": "value_not_permitted", "field_name": "session_id", "reason": "archived"},
        ),
    ),
    Case(
        "status-413",
        "POST",
        LIST,
        413,
        "request_entity_too_large",
        json={"type": "web", **WEB_LIST},
        prepare=_fault("status", status=413, body={"type": "request_entity_too_large", "max_bytes": 10}),
    ),
]


def assert_equal(actual: Any, expected: Any) -> None:
    assert actual == expected


def _exhaust(sim: DevRevSimulator) -> dict[str, Any]:
    response = requests.get(sim.url + SELF, headers={"Authorization": f"Bearer {sim.token}"}, timeout=10)
    assert response.status_code == 200
    assert response.headers["X-Ratelimit-Remaining"] == "0"
    return {}


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_exchange_matches_contract(case: Case, openapi: OpenAPI) -> None:
    with DevRevSimulator(seed=0, **case.simulator_kwargs) as sim:
        additions = case.prepare(sim) if case.prepare else {}
        headers: dict[str, str] = {}
        if case.auth == "token":
            headers["Authorization"] = f"Bearer {sim.token}"
        elif case.auth is not None:
            headers["Authorization"] = case.auth
        params = {**case.params, **additions} if case.params is not None else None
        body = case.json
        if case.method == "POST" and case.data is None and isinstance(body, dict | type(None)):
            body = {**(body or {}), **additions}
        elif case.method == "GET" and params is None and additions:
            params = additions
        request = requests.Request(
            case.method, sim.url + case.path, params=params, json=body, data=case.data, headers=headers
        ).prepare()
        with requests.Session() as client:
            response = client.send(request, timeout=30)

    assert response.status_code == case.status, response.text[:500]
    assert response.headers["Content-Type"] == "application/json"
    payload = response.json()
    if case.error_type is not None:
        assert payload["type"] == case.error_type
        if not case.id.startswith("status-"):  # the status fault sends its body verbatim
            assert isinstance(payload.get("message"), str)
    if case.status == 429 and "retry-after" in {name.lower() for name in response.headers}:
        float(response.headers["Retry-After"])
    if case.check is not None:
        case.check(payload)
    for session in payload.get("sessions", []) + ([payload["session"]] if "session" in payload else []):
        assert_valid_session(session)

    openapi.validate_response(RequestsOpenAPIRequest(request), RequestsOpenAPIResponse(response))
    if case.request_valid is True:
        openapi.validate_request(RequestsOpenAPIRequest(request))
    elif case.request_valid is False:
        with pytest.raises(OpenAPIError):
            openapi.validate_request(RequestsOpenAPIRequest(request))


def test_validation_is_not_vacuous(openapi: OpenAPI) -> None:
    """The validator rejects a session missing required fields, so the passes above mean something."""
    request = requests.Request("GET", "http://127.0.0.1:9/observability.sessions.get", params=ANDROID).prepare()
    response = requests.Response()
    response.status_code = 200
    response.headers["Content-Type"] = "application/json"
    response._content = json.dumps({"session": {"type": "mobile", "session_id": "x"}}).encode()
    with pytest.raises(OpenAPIError):
        openapi.validate_response(RequestsOpenAPIRequest(request), RequestsOpenAPIResponse(response))


# -- every seeded and made session against the schema ------------------------------------------------

SEEDED = seed_sessions(0)


@pytest.mark.parametrize(
    "session", [session for _, session in SEEDED], ids=[f"seed0-{s['session_id']}" for _, s in SEEDED]
)
def test_seeded_session_is_contract_valid(session: dict[str, Any]) -> None:
    assert_valid_session(session)


@pytest.mark.parametrize("seed", [1, 2, 12345])
def test_other_seeds_are_contract_valid(seed: int) -> None:
    for _, session in seed_sessions(seed):
        assert_valid_session(session)


@pytest.mark.parametrize(("kind", "platform"), [("mobile", "android"), ("mobile", "ios"), ("web", None)])
def test_simulator_make_session_is_contract_valid(kind: str, platform: str | None) -> None:
    sim = DevRevSimulator(seed_data=False)
    assert_valid_session(sim.make_session(kind, platform=platform))
    assert_valid_session(
        sim.make_session(kind, platform=platform, session_id="given", is_crash=True)
        if kind == "mobile"
        else sim.make_session(kind, session_id="given", rage_click_count=9)
    )


@pytest.mark.property
@sized(60, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(min_value=0, max_value=2**32),
    platform=st.sampled_from(["android", "ios", "web"]),
    session_id=st.text(min_size=1, max_size=40),
    app_version=st.from_regex(r"\A[0-9]{1,2}\.[0-9]{1,2}\.[0-9]{1,2}\Z"),
)
def test_made_sessions_are_contract_valid(seed: int, platform: str, session_id: str, app_version: str) -> None:
    rng = random.Random(seed)
    kind = "web" if platform == "web" else "mobile"
    overrides = {"device_metadata": {"app_version": app_version}} if kind == "mobile" else {}
    session = make_session(rng, kind, platform=platform, session_id=session_id, **overrides)
    assert_valid_session(session)
    assert session["session_id"] == session_id
    assert session["platform"] == platform


# -- recordings and developer info of every session, and what the contract says about developer-info GET -----


@cache
def schema_validator(name: str) -> OAS30Validator:
    schema = {"$ref": f"#/components/schemas/{name}", "components": spec_dict()["components"]}
    return OAS30Validator(schema, format_checker=oas30_format_checker)


def assert_valid(name: str, body: dict[str, Any]) -> None:
    errors = [error.message for error in schema_validator(name).iter_errors(body)]
    assert not errors, errors[:5]


@pytest.mark.parametrize("seed", [0, 7])
def test_every_recording_and_developer_info_of_a_seed_is_contract_valid(seed: int) -> None:
    sim = DevRevSimulator(seed=seed)
    for version_key, session in seed_sessions(seed):
        sid = session["session_id"]
        if session["type"] == "web":
            for tab_id in session["tab_ids"]:
                recording = sim.recording(sid, version_key, tab_id=tab_id)
                assert_valid("observability-sessions-data-get-response", recording)
                assert recording["timeline_data"]["events"][-1]["event_type"] == "recording_stopped"
                assert_valid(
                    "observability-sessions-developer-info-get-response", sim.developer_info(sid, version_key, tab_id)
                )
            continue
        for recording_id in session["recording_ids"]:
            recording = sim.recording(sid, version_key, recording_id=recording_id)
            assert_valid("observability-sessions-data-get-response", recording)
            last = recording["recording_events_timeline"][-1]["event_name"]
            ended = recording_id == session["recording_ids"][-1]
            if ended and session["is_crash"]:
                assert last == "exception"
                assert recording["observability_sessions_log_data"]["is_crash"] is True
            elif ended and session["is_anr"]:
                assert last == "anr"
                assert recording["observability_sessions_log_data"]["value"].startswith("ANR in ")
            else:
                assert last == "stopped"
                assert "observability_sessions_log_data" not in recording


def test_recordings_are_deterministic_per_seed_and_differ_between_seeds() -> None:
    key = {"recording_id": "rec_a11d0c4a5402"}
    first = b"".join(DevRevSimulator(seed=3).recording_chunks(SEED_ANDROID_SESSION_ID, SEED_VERSION_KEY, **key))
    again = b"".join(DevRevSimulator(seed=3).recording_chunks(SEED_ANDROID_SESSION_ID, SEED_VERSION_KEY, **key))
    other = b"".join(DevRevSimulator(seed=4).recording_chunks(SEED_ANDROID_SESSION_ID, SEED_VERSION_KEY, **key))
    assert first == again
    assert first != other


def test_developer_info_has_no_get_in_the_contract_and_the_simulator_answers_405(simulator: DevRevSimulator) -> None:
    assert set(spec_dict()["paths"][INFO]) == {"post"}
    response = requests.get(
        simulator.url + INFO, params=WEB_TAB_DATA, headers={"Authorization": f"Bearer {simulator.token}"}, timeout=10
    )
    assert response.status_code == 405
    assert response.headers["Allow"] == "POST"
