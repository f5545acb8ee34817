"""
Where a secret could get out of an error text, one case each: a proxy password that a URL parser would cut
short, a secret cut in half by an excerpt before it could be masked, a server echoing the request's headers,
a proxy variable nobody registered with the masker. ``tests/reliability/test_secret_sweep.py`` then tries
generated secrets through every error path.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from urllib.parse import quote

import pytest

from airflow_provider_devrev.exceptions import (
    BODY_EXCERPT_CHARS,
    DevRevAuthError,
    DevRevError,
    DevRevInvalidInputError,
    DevRevUnexpectedResponseError,
    body_excerpt,
)
from airflow_provider_devrev.hooks.devrev import DevRevHook
from airflow_provider_devrev.network import network_settings
from airflow_provider_devrev.triggers.devrev import DevRevSessionTrigger
from airflow_provider_devrev.triggers.session import session_from_event
from tests.reliability.sweep_servers import EchoServer

PROXY_ENV = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy", "NO_PROXY", "no_proxy")
CONN_ID = "secrets_test"
#: Where an excerpt of a body and a shown value are cut (exceptions.body_excerpt, exceptions._show).
BODY_CUT = BODY_EXCERPT_CHARS - 1
VALUE_CUT = 77


def pieces(secret: str, size: int = 6) -> set[str]:
    return {secret[i : i + size] for i in range(len(secret) - size + 1)}


def shown_pieces(secret: str, text: str, size: int = 6) -> list[str]:
    return sorted(piece for piece in pieces(secret, size) if piece in text)


def chain_text(error: BaseException) -> str:
    texts, seen, pending = [], set(), [error]
    while pending:
        link = pending.pop()
        if not isinstance(link, BaseException) or id(link) in seen:
            continue
        seen.add(id(link))
        texts += [str(link), repr(link), repr(link.args)]
        pending += [link.__cause__, link.__context__, *link.args]
    return "\n".join(texts)


@pytest.fixture(autouse=True)
def no_proxy_environment(monkeypatch):
    for name in PROXY_ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def echo():
    server = EchoServer().start()
    yield server
    server.stop()


def use_connection(monkeypatch, host: str, token: str, **extra) -> None:
    conn = {"conn_type": "devrev", "host": host, "password": token, "extra": extra}
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", json.dumps(conn))


def read_settings(reader: str) -> None:
    hook = DevRevHook(CONN_ID)
    if reader == "sync":
        hook.settings  # noqa: B018 - reading the connection is what registers its secrets
    else:
        asyncio.run(hook.aget_settings())


def get_session(hook: DevRevHook, transport: str) -> dict:
    if transport == "requests":
        return hook.get_session("android", "s-1", "v@1")
    return asyncio.run(hook.aget_session("android", "s-1", "v@1"))


# -- a proxy URL that does not parse ------------------------------------------------------------------------

UNPARSEABLE = [
    ("http://alice:s3cr/et@proxy.corp:3128", "s3cr/et"),  # issue 26: '/' ends the authority for urlsplit
    ("http://alice:pa/ss@wd@proxy.corp:3128", "pa/ss@wd"),
    ("socks5://alice:s3cr/et@proxy.corp:1080", "s3cr/et"),
    ("http://alice:s3cr3t-pw", "s3cr3t-pw"),  # the host forgotten: the password reads as a port
    ("alice:p#ss?wd/x@proxy.corp:notaport", "p#ss?wd/x"),
    ("http://alice:p#ssw?rd@proxy.corp:3128", "p#ssw?rd"),
    # Cut short by urlsplit into a proxy that parses: host "alice", port 12 (or host "pw"), the rest a path.
    ("http://alice:12/x3@proxy.corp:3128", "12/x3"),
    ("http://alice:pw@abc/:def@proxy.corp:3128", "pw@abc/:def"),
]


@pytest.mark.parametrize(("value", "password"), UNPARSEABLE)
@pytest.mark.parametrize("where", ["extra proxy", "HTTPS_PROXY", "ALL_PROXY"])
def test_a_proxy_url_that_does_not_parse_is_refused_without_its_password(value, password, where):
    extra, env = ({"proxy": value}, {}) if where == "extra proxy" else ({}, {where: value})

    with pytest.raises(DevRevInvalidInputError) as caught:
        network_settings("conn", "https://api.devrev.ai", extra, env)

    text = chain_text(caught.value) + repr(caught.value.value)
    assert where in text
    assert "alice:***@" in text or "alice:***" in text
    assert shown_pieces(password, text, 4) == []


def test_a_password_holding_an_at_sign_parses_and_is_never_shown():
    proxy = network_settings("conn", "https://api.devrev.ai", {"proxy": "http://a:p@ss-word@proxy.corp:3128"}).proxy

    assert proxy is not None
    assert (proxy.url, proxy.username, proxy.password) == ("http://proxy.corp:3128", "a", "p@ss-word")
    assert "p@ss" not in proxy.display + repr(proxy)


# -- ALL_PROXY ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("base", "env", "expected"),
    [
        ("https://api.devrev.ai", {"ALL_PROXY": "http://all:1"}, "http://all:1"),
        ("https://api.devrev.ai", {"all_proxy": "http://lower:1", "ALL_PROXY": "http://upper:1"}, "http://lower:1"),
        ("https://api.devrev.ai", {"HTTPS_PROXY": "http://own:1", "all_proxy": "http://all:1"}, "http://own:1"),
        ("https://api.devrev.ai", {"HTTP_PROXY": "http://plain:1", "ALL_PROXY": "http://all:1"}, "http://all:1"),
        ("http://127.0.0.1:8080", {"ALL_PROXY": "http://all:1"}, "http://all:1"),
        ("https://api.devrev.ai", {"ALL_PROXY": "http://all:1", "NO_PROXY": "devrev.ai"}, None),
    ],
)
def test_all_proxy_is_the_fallback_after_the_schemes_own_variable(base, env, expected):
    proxy = network_settings("conn", base, {}, env).proxy
    assert (proxy.url if proxy else None) == expected


# -- registered with the secret masker when read ------------------------------------------------------------


@pytest.mark.parametrize("reader", ["sync", "async"])
@pytest.mark.parametrize("where", ["extra", "HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "ALL_PROXY", "all_proxy"])
@pytest.mark.parametrize("valid", [True, False], ids=["valid", "unparseable"])
def test_every_form_of_a_proxy_password_is_registered_with_the_masker_when_read(monkeypatch, reader, where, valid):
    from airflow.providers.common.compat.sdk import redact

    # Of this case alone (the masker is global); with characters that percent-encoding changes.
    password = f"pw@{secrets.token_hex(6)}/:{secrets.token_hex(6)}"
    encoded = quote(password, safe="")
    value = f"http://sweeper:{encoded if valid else password}@127.0.0.1:9"
    forms = {"value": value, "as written": encoded if valid else password, "decoded": password, "encoded": encoded}
    assert all(form in str(redact(f"<{form}>")) for form in forms.values())
    if where == "extra":
        use_connection(monkeypatch, "https://127.0.0.1:1", "a-real-looking-token-123", proxy=value)
    else:
        use_connection(monkeypatch, "https://127.0.0.1:1", "a-real-looking-token-123")
        monkeypatch.setenv(where, value)

    # An https base URL reads the extra, else HTTPS_PROXY, else ALL_PROXY; HTTP_PROXY is left unread.
    if not valid and where != "HTTP_PROXY":
        with pytest.raises(DevRevInvalidInputError, match=where if where != "extra" else "extra proxy"):
            read_settings(reader)
    else:
        read_settings(reader)

    unmasked = {name: form for name, form in forms.items() if form in str(redact(f"<{form}>"))}
    assert unmasked == {}


# -- hidden before the cut ----------------------------------------------------------------------------------


@pytest.fixture
def long_token(monkeypatch, echo):
    """A 200-character token (longer than any cut), read by a hook as the triggerer and the worker do."""
    token = ("tk" + secrets.token_urlsafe(150))[:200]
    use_connection(monkeypatch, echo.url, token)
    DevRevHook(CONN_ID).settings  # noqa: B018
    return token


@pytest.fixture
def short_token(monkeypatch, long_token, echo):
    """A 60-character token of another connection, read too: short enough to end exactly at a cut."""
    token = ("ts" + secrets.token_urlsafe(50))[:60]
    monkeypatch.setenv("AIRFLOW_CONN_SECRETS_TEST_2", json.dumps({"conn_type": "devrev", "password": token}))
    DevRevHook("secrets_test_2").settings  # noqa: B018
    return token


def cut_cases(cut: int, short: int) -> list[tuple[str, int]]:
    """(which token, where it starts): straddling the cut, 6 or 1 characters before it, at it, ending at it."""
    return [("long", 0), ("long", cut - 6), ("long", cut - 1), ("long", cut), ("short", cut - short)]


@pytest.mark.parametrize(("which", "start"), cut_cases(VALUE_CUT, 60))
def test_a_value_shown_in_an_error_is_hidden_before_it_is_cut(long_token, short_token, which, start):
    token = long_token if which == "long" else short_token
    # repr() opens the value with a quote: the token starts at ``start`` of the shown text.
    value = "v" * (start - 1) + token + "w" * 20 if start else token

    error = DevRevInvalidInputError("field", value, "must be something")

    shown = str(error).split("=", 1)[1]
    assert shown.startswith(repr(value)[: min(start, VALUE_CUT)])
    assert shown_pieces(token, str(error)) == []


@pytest.mark.parametrize(("which", "start"), cut_cases(BODY_CUT, 60))
def test_a_body_excerpt_is_hidden_before_it_is_cut(long_token, short_token, which, start):
    token = long_token if which == "long" else short_token
    prefix = "b" * max(0, start - len("Bearer "))
    excerpt = body_excerpt(prefix + "Bearer " + token + " and more")

    assert len(excerpt) <= BODY_EXCERPT_CHARS
    assert excerpt.startswith(prefix[:BODY_CUT])
    assert shown_pieces(token, excerpt) == []


# -- a server that echoes the request's headers -------------------------------------------------------------


@pytest.mark.parametrize("transport", ["requests", "aiohttp"])
@pytest.mark.parametrize("pad", [0, 100, 150])
def test_an_answer_echoing_the_authorization_header_is_quoted_without_the_token(long_token, echo, transport, pad):
    echo.status, echo.prefix = 401, "p" * pad
    hook = DevRevHook(CONN_ID, max_retries=0)

    # Any 401 is an auth error, whatever its body, quoting an excerpt of a body that is not DevRev's.
    with pytest.raises(DevRevAuthError) as caught:
        get_session(hook, transport)

    text = chain_text(caught.value)
    assert "Authorization: ***" in text or pad > 100  # the excerpt reached the header, now hidden
    assert shown_pieces(long_token, text) == []


def test_a_trigger_error_event_holds_no_piece_of_an_echoed_token(long_token, echo):
    from airflow.serialization.serialized_objects import BaseSerialization

    echo.status, echo.prefix = 403, ""
    trigger = DevRevSessionTrigger(
        devrev_conn_id=CONN_ID, platform="android", session_id="s-1", version_key="v@1", poll_interval=1
    )

    async def first_event():
        async for event in trigger.run():
            return event

    event = asyncio.run(first_event())

    assert event.payload["status"] == "error"
    stored = json.dumps(BaseSerialization.serialize(event.payload))
    assert "Authorization: ***" in stored
    assert shown_pieces(long_token, stored) == []
    with pytest.raises(DevRevError) as rebuilt:
        session_from_event(event.payload)
    assert shown_pieces(long_token, chain_text(rebuilt.value)) == []


def test_a_recording_body_that_is_not_json_is_reported_without_the_parsers_window_of_it():
    # yajl's message quotes the bytes around the error, cut by yajl itself: a token echoed there would arrive
    # cut, past any masking. The error names the parser's verdict only.
    from airflow_provider_devrev.contract import get_session_recording_request
    from airflow_provider_devrev.hooks._streaming import RecordingScanner

    token = "tok-S3cretValue-0123456789abcdef"
    scanner = RecordingScanner(get_session_recording_request("s-1", "app@1", recording_id="r-1"))
    body = b'{"recording": {"a": 1}, "echo": Bearer ' + token.encode() + b" }"
    with pytest.raises(DevRevUnexpectedResponseError) as caught:  # noqa: PT012 (feed or finish may raise)
        scanner.feed(body)
        scanner.finish()
    text = str(caught.value)
    assert "not complete JSON" in text
    assert not any(token[i : i + 6] in text for i in range(len(token) - 5))
