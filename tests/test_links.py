"""The "DevRev session" link: its address from the connection's template, and when there is none."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from airflow_provider_devrev.connection import ConnectionSettings, HookOptions, settings_from_connection
from airflow_provider_devrev.get_provider_info import get_provider_info
from airflow_provider_devrev.hooks.devrev import DevRevHook
from airflow_provider_devrev.links import (
    SESSION_URL_XCOM_KEY,
    DevRevSessionLink,
    keep_session_url,
    session_url,
    template_problem,
)
from airflow_provider_devrev.operators.devrev import GetSessionOperator, GetSessionRecordingOperator
from airflow_provider_devrev.sensors.devrev import DevRevSessionSensor
from tests.properties import sized

TOKEN = "tok-" + "s3cr3t" * 6
TEMPLATE = "https://devrev.example.com/{platform}/sessions/{session_id}?app={version_key}"


class FakeTI:
    def __init__(self) -> None:
        self.pushed: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed[key] = value


class FakeTask:
    devrev_conn_id = "devrev_links"
    log = logging.getLogger("tests.links")


def settings(template: Any) -> ConnectionSettings:
    return ConnectionSettings(base_url="http://127.0.0.1:1", token=TOKEN, session_url_template=template)


def keep(template: Any, **values: Any) -> tuple[str | None, dict[str, Any]]:
    ti = FakeTI()
    values = {"platform": "android", "session_id": "s-1", "version_key": "com.acme@1.0", **values}
    url = keep_session_url(FakeTask(), {"ti": ti}, settings(template), **values)
    return url, ti.pushed


def test_each_placeholder_takes_its_value() -> None:
    url = session_url(TEMPLATE, platform="ios", session_id="abc-123", version_key="shop")
    assert url == "https://devrev.example.com/ios/sessions/abc-123?app=shop"


def test_values_are_url_quoted_so_they_cannot_change_the_address_shape() -> None:
    url = session_url(TEMPLATE, platform="web", session_id="a/b?c#d", version_key="com.acme shop@5.2 & more")
    assert url == ("https://devrev.example.com/web/sessions/a%2Fb%3Fc%23d?app=com.acme%20shop%405.2%20%26%20more")
    parts = urlsplit(url)
    assert (parts.hostname, parts.fragment) == ("devrev.example.com", "")


@pytest.mark.property
@sized(200)
@given(
    session_id=st.text(min_size=1, max_size=40),
    version_key=st.text(min_size=1, max_size=40),
)
def test_any_value_comes_back_whole_from_its_place_and_the_host_never_moves(session_id: str, version_key: str) -> None:
    if session_id in (".", ".."):  # a whole path segment a browser would resolve: no link at all
        with pytest.raises(ValueError, match="path segment"):
            session_url(TEMPLATE, platform="android", session_id=session_id, version_key=version_key)
        return
    url = session_url(TEMPLATE, platform="android", session_id=session_id, version_key=version_key)
    parts = urlsplit(url)
    assert (parts.scheme, parts.hostname, parts.fragment) == ("https", "devrev.example.com", "")
    assert unquote(parts.path.rsplit("/", 1)[1]) == session_id
    assert parts.query.count("=") == 1
    assert unquote(parts.query.removeprefix("app=")) == version_key


@pytest.mark.parametrize(
    ("template", "values"),
    [
        (TEMPLATE, {"session_id": ".."}),
        (TEMPLATE, {"session_id": "."}),
        ("https://x.example/{version_key}/view", {"version_key": ".."}),
        # Browsers read %2e as a dot in a path segment (WHATWG URL): a literal %2e beside the value is one too.
        ("https://x.example/sessions/%2E{session_id}/view", {"session_id": "."}),
    ],
)
def test_a_value_that_would_step_up_the_path_gives_no_link(template: str, values: dict[str, str], caplog) -> None:
    # quote() leaves dots alone, and a browser resolves /sessions/../replay to /replay: another page of the site.
    with caplog.at_level(logging.WARNING, logger="tests.links"):
        assert keep(template, **values) == (None, {SESSION_URL_XCOM_KEY: ""})
    assert "a '.' or '..' path segment" in caplog.text


def test_dots_inside_a_value_are_kept() -> None:
    url = session_url(TEMPLATE, platform="ios", session_id="..a", version_key="..")
    assert url == "https://devrev.example.com/ios/sessions/..a?app=.."


def test_literal_braces_stay_and_unused_placeholders_are_fine() -> None:
    assert template_problem("https://x.example/{{id}}/{session_id}") is None
    assert session_url("https://x.example/{{id}}/{session_id}", platform=None, session_id="s", version_key="v") == (
        "https://x.example/{id}/s"
    )


@pytest.mark.parametrize(
    ("template", "problem"),
    [
        ("https://x.example/{sesion_id}", "has the unknown placeholder {sesion_id}: use {platform}, {session_id}"),
        ("https://x.example/{}", "has the unknown placeholder {}"),
        ("https://x.example/{session_id!r}", "has {session_id} with a format or conversion"),
        ("https://x.example/{session_id:>20}", "has {session_id} with a format or conversion"),
        ("https://x.example/{session_id.upper}", "has the unknown placeholder {session_id.upper}"),
        ("https://x.example/{session_id", "has an unmatched '{' or '}'"),
        ("https://x.example/session_id}", "has an unmatched '{' or '}'"),
        ("javascript:alert(1)//{session_id}", "must be an http:// or https:// URL with a host"),
        ("ftp://x.example/{session_id}", "must be an http:// or https:// URL with a host"),
        ("/sessions/{session_id}", "must be an http:// or https:// URL with a host"),
        ("https://user:pw@x.example/{session_id}", "contains credentials"),
        ("https://x.example/ {session_id}", "contains whitespace or a control character"),
        ("https://x.example/\n{session_id}", "contains whitespace or a control character"),
        (42, "must be a URL (text)"),
        # A value in the host would let a session id (a DAG run's conf, say) choose the site the button opens.
        ("https://{session_id}/x", "has a placeholder before the path"),
        ("https://devrev.example.com.{platform}/x", "has a placeholder before the path"),
        ("https://x.example:{session_id}/x", "has a placeholder before the path"),
    ],
)
def test_a_template_that_cannot_make_a_safe_address_says_why(template: Any, problem: str) -> None:
    found = template_problem(template)
    assert found is not None
    assert found.startswith(problem), found


@pytest.mark.parametrize("template", [None, ""])
# Kept empty rather than not at all: Airflow 3's worker logs an ERROR for every missing XCom it asks for.
def test_without_the_extra_there_is_no_link_and_nothing_is_logged(template: Any, caplog) -> None:
    with caplog.at_level(logging.DEBUG, logger="tests.links"):
        assert keep(template) == (None, {SESSION_URL_XCOM_KEY: ""})
    assert caplog.records == []


def test_a_good_template_is_kept_as_the_xcom_the_button_reads() -> None:
    url, pushed = keep(TEMPLATE)
    assert url == "https://devrev.example.com/android/sessions/s-1?app=com.acme%401.0"
    assert pushed == {SESSION_URL_XCOM_KEY: url}


def test_a_connection_never_read_gives_an_empty_link_and_a_context_without_ti_none() -> None:
    ti = FakeTI()
    assert keep_session_url(FakeTask(), {"ti": ti}, None, platform="web", session_id="s", version_key="v") is None
    assert ti.pushed == {SESSION_URL_XCOM_KEY: ""}
    assert keep_session_url(FakeTask(), {}, settings(TEMPLATE), platform="web", session_id="s", version_key="v") == (
        "https://devrev.example.com/web/sessions/s?app=v"
    )


def test_a_bad_template_costs_the_link_not_the_task_and_the_log_names_the_extra(caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="tests.links"):
        assert keep("https://x.example/{id}") == (None, {SESSION_URL_XCOM_KEY: ""})
    [record] = caplog.records
    assert record.getMessage() == (
        "No DevRev session link: extra session_url_template of connection 'devrev_links' has the unknown "
        "placeholder {id}: use {platform}, {session_id}, {version_key}"
    )


def test_a_template_needing_a_platform_the_task_does_not_know_gives_no_link(caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="tests.links"):
        assert keep(TEMPLATE, platform=None) == (None, {SESSION_URL_XCOM_KEY: ""})
    assert "uses {platform}, which this task does not know (pass platform= to the task)" in caplog.text
    assert keep("https://x.example/{session_id}", platform=None)[0] == "https://x.example/s-1"


@pytest.mark.parametrize(
    "where", ["https://x.example/{session_id}?t=" + TOKEN, "https://x.example/" + TOKEN], ids=["query", "path"]
)
def test_a_token_pasted_into_the_template_is_never_shown(where: str, caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="tests.links"):
        assert keep(where) == (None, {SESSION_URL_XCOM_KEY: ""})
    assert "contains the connection's API token" in caplog.text
    assert TOKEN not in caplog.text


def test_the_connection_carries_the_extra_as_given_and_never_fails_on_it() -> None:
    def read(extra: dict[str, Any]) -> Any:
        return settings_from_connection(
            "c", host="http://127.0.0.1:1", port=None, password=TOKEN, extra=extra, options=HookOptions()
        ).session_url_template

    assert read({}) is None
    assert read({"session_url_template": ""}) is None
    assert read({"session_url_template": TEMPLATE}) == TEMPLATE
    # A bad template is the link's problem only: every request of the connection still works.
    assert read({"session_url_template": "https://x.example/{nope}"}) == "https://x.example/{nope}"
    assert read({"extra__devrev__session_url_template": TEMPLATE}) == TEMPLATE


def test_the_connection_test_fails_on_a_bad_template_naming_the_extra(devrev_simulator, monkeypatch) -> None:
    sim = devrev_simulator
    conn = "AIRFLOW_CONN_DEVREV_DEFAULT"
    monkeypatch.setenv(conn, sim.connection_json(session_url_template="https://x.example/{sessionid}"))
    ok, message = DevRevHook().test_connection()
    assert (ok, message) == (
        False,
        "DevRev connection 'devrev_default' works, but its session_url_template has the unknown placeholder "
        "{sessionid}: use {platform}, {session_id}, {version_key}",
    )
    monkeypatch.setenv(conn, sim.connection_json(session_url_template=TEMPLATE))
    assert DevRevHook().test_connection()[0] is True


# -- the button --------------------------------------------------------------------------------------------------


def test_the_link_is_registered_named_and_on_the_three_tasks() -> None:
    assert get_provider_info()["extra-links"] == ["airflow_provider_devrev.links.DevRevSessionLink"]
    assert DevRevSessionLink().name == "DevRev session"
    for task_class in (GetSessionOperator, DevRevSessionSensor, GetSessionRecordingOperator):
        # On the class, not set in __init__: a mapped task shows only class-level links.
        assert [type(link) for link in task_class.operator_extra_links] == [DevRevSessionLink]


def test_the_button_shows_what_the_task_kept_and_nothing_without_it(monkeypatch) -> None:
    from airflow.providers.common.compat.sdk import XCom

    kept: dict[Any, Any] = {"run-1": "https://x.example/s-1", "run-2": None}
    asked: list[tuple[str, Any]] = []

    def get_value(*, key: str, ti_key: Any) -> Any:
        asked.append((key, ti_key))
        return kept[ti_key]

    monkeypatch.setattr(XCom, "get_value", get_value)
    link = DevRevSessionLink()
    assert link.get_link(None, ti_key="run-1") == "https://x.example/s-1"
    # None would show on Airflow 3 as a link to "None".
    assert link.get_link(None, ti_key="run-2") == ""
    assert asked == [(SESSION_URL_XCOM_KEY, "run-1"), (SESSION_URL_XCOM_KEY, "run-2")]


def test_the_recording_operator_checks_a_literal_platform_when_the_dag_is_parsed() -> None:
    with pytest.raises(ValueError, match="platform"):
        GetSessionRecordingOperator(task_id="r", session_id="s", version_key="v", recording_id="r1", platform="windows")
    task = GetSessionRecordingOperator(
        task_id="r2", session_id="s", version_key="v", recording_id="r1", platform="{{ params.p }}"
    )
    assert "platform" in task.template_fields


def test_a_fetch_that_fails_after_reading_the_connection_keeps_its_link(devrev_simulator, monkeypatch) -> None:
    from airflow_provider_devrev.exceptions import DevRevNotFoundError

    sim = devrev_simulator
    monkeypatch.setenv("AIRFLOW_CONN_DEVREV_DEFAULT", sim.connection_json(session_url_template=TEMPLATE))
    ti = FakeTI()
    task = GetSessionOperator(task_id="get", platform="ios", session_id="never-uploaded", version_key="v1")
    with pytest.raises(DevRevNotFoundError):
        task.execute({"ti": ti})  # type: ignore[arg-type]
    assert ti.pushed == {SESSION_URL_XCOM_KEY: "https://devrev.example.com/ios/sessions/never-uploaded?app=v1"}
