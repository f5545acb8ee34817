"""
Credentials as secret stores and people hand them over, against the simulator over real HTTP on 127.0.0.1:
stored tokens with newlines, spaces or ``Bearer ``, token rotation (a 401 re-reads the connection once), and
no token in any error or its ``__cause__``/``__context__`` chain, in both transports.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import secrets
from urllib.parse import quote

import pytest

from airflow_provider_devrev.connection import ConnectionSettings, normalize_token, token_forms
from airflow_provider_devrev.contract import get_session_request
from airflow_provider_devrev.exceptions import DevRevAuthError, DevRevError, DevRevForbiddenError
from airflow_provider_devrev.hooks.devrev import DevRevHook
from tests.fakes import FakeSleep

GET = "/observability.sessions.get"
LIST = "/observability.sessions.list"
VERSION = "com.example.app@1.0.0"
#: Realistic length, and no run of 6 characters in common with any word of an error message.
TOKEN = "tk" + secrets.token_hex(24)
NEW_TOKEN = "tk" + secrets.token_hex(24)

pytestmark = pytest.mark.devrev_simulator(token=TOKEN)

#: Stored forms that must work: what a file-based secret, a Vault file or a paste hands over.
ACCEPTED = {
    "trailing newline": f"{TOKEN}\n",
    "spaces and CRLF": f"  {TOKEN}\r\n",
    "Bearer prefix": f"Bearer {TOKEN}",
    "bearer prefix and newline": f"bearer {TOKEN}\n",
}
#: Stored forms that must be refused before any request, and the problem the message names.
REFUSED = {
    "space inside": (f"{TOKEN[:20]} {TOKEN[20:]}", "space"),
    "newline inside": (f"{TOKEN[:20]}\n{TOKEN[20:]}", "newline inside"),
    "NUL at the end": (f"{TOKEN}\x00", "control character"),
    "zero-width space inside": (f"{TOKEN[:20]}\u200b{TOKEN[20:]}", "not printable ASCII"),
}


def pieces(token: str, size: int = 6) -> set[str]:
    """Every run of ``size`` characters of the token: none may appear in a message."""
    return {token[i : i + size] for i in range(len(token) - size + 1)}


def escaped_forms(token: str) -> list[str]:
    """The token raw and as repr, JSON and URL-encoding write it."""
    return [token, repr(token)[1:-1], json.dumps(token)[1:-1], quote(token, safe="")]


def chain(error: BaseException | None) -> list[BaseException]:
    """The error and every exception reachable through ``__cause__`` and ``__context__``."""
    seen: list[BaseException] = []
    todo = [error]
    while todo:
        current = todo.pop()
        if current is None or any(current is s for s in seen):
            continue
        seen.append(current)
        todo += [current.__cause__, current.__context__]
    return seen


def assert_no_token_in_chain(error: BaseException, *tokens: str) -> None:
    texts = [f"{type(e).__name__}: {e} {e!r} {e.args!r}" for e in chain(error)]
    for token in tokens:
        for form in escaped_forms(token) + escaped_forms(token.strip()):
            assert not any(form in text for text in texts), (form, texts)


def connect(monkeypatch, sim, password: str, **extra) -> None:
    conn = {"conn_type": "devrev", "host": sim.url, "password": password, "extra": extra}
    monkeypatch.setenv("AIRFLOW_CONN_DEVREV_DEFAULT", json.dumps(conn))


@pytest.fixture
def sim(devrev_simulator, monkeypatch):
    connect(monkeypatch, devrev_simulator, TOKEN)
    return devrev_simulator


@pytest.fixture
def session(sim):
    return sim.add_session(sim.make_session("mobile", platform="android"), version_key=VERSION)


@pytest.fixture
def lookups(monkeypatch) -> list[str]:
    """Every connection lookup either transport makes."""
    from airflow_provider_devrev.hooks import _credentials

    seen: list[str] = []
    original = DevRevHook.get_connection
    real_lookup = _credentials._lookup
    in_async_lookup = [0]  # which, before Airflow 3.3.2, calls get_connection in a thread: counted once

    def counting(conn_id):
        if not in_async_lookup[0]:
            seen.append(conn_id)
        return original(conn_id)

    async def counting_lookup(conn_id, hook_class):
        seen.append(conn_id)
        in_async_lookup[0] += 1
        try:
            return await real_lookup(conn_id, hook_class)
        finally:
            in_async_lookup[0] -= 1

    monkeypatch.setattr(DevRevHook, "get_connection", staticmethod(counting))
    monkeypatch.setattr(_credentials, "_lookup", counting_lookup)
    return seen


def aget(hook: DevRevHook, session_id: str) -> dict:
    return asyncio.run(hook.aget_session("android", session_id, VERSION))


def fetch(hook: DevRevHook, transport: str, session_id: str) -> dict:
    """One ``get_session`` through the sync (requests) or the async (aiohttp) transport."""
    return hook.get_session("android", session_id, VERSION) if transport == "sync" else aget(hook, session_id)


def send(hook: DevRevHook, transport: str, request) -> dict:
    return hook.call(request) if transport == "sync" else asyncio.run(hook.acall(request))


def rotate_at(sim, monkeypatch, number: int, *, new_token: str = NEW_TOKEN) -> None:
    """At request ``number``: DevRev revokes the token for a new one and the Airflow connection is updated."""

    def rotate() -> None:
        sim.rotate_token(new_token)
        connect(monkeypatch, sim, new_token)

    sim.at_request(number, rotate)


# -- stored tokens ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("transport", ["sync", "async"])
@pytest.mark.parametrize("stored", list(ACCEPTED.values()), ids=list(ACCEPTED))
def test_stored_tokens_with_whitespace_or_bearer_work_in_both_transports(sim, session, monkeypatch, stored, transport):
    connect(monkeypatch, sim, stored)
    hook = DevRevHook(sleep=FakeSleep())

    got = (
        hook.get_session("android", session["session_id"], VERSION)
        if transport == "sync"
        else aget(hook, session["session_id"])
    )

    assert got == session
    assert [r.token for r in sim.requests] == [1]
    assert hook.settings.token == TOKEN


@pytest.mark.parametrize("transport", ["sync", "async"])
@pytest.mark.parametrize(("stored", "problem"), list(REFUSED.values()), ids=list(REFUSED))
def test_stored_tokens_with_whitespace_or_controls_inside_are_refused_before_any_request(
    sim, monkeypatch, stored, problem, transport
):
    connect(monkeypatch, sim, stored)
    hook = DevRevHook(sleep=FakeSleep())

    with pytest.raises(DevRevError) as caught:
        fetch(hook, transport, "s-1")

    message = str(caught.value)
    assert "'devrev_default'" in message
    assert problem in message
    assert not any(piece in message for piece in pieces(TOKEN))
    assert_no_token_in_chain(caught.value, stored, TOKEN)
    assert sim.requests == []


def test_bearer_prefix_is_said_at_debug(caplog):
    caplog.set_level(logging.DEBUG, logger="airflow_provider_devrev.connection")

    assert normalize_token(f"BEARER   {TOKEN}\t", "c") == TOKEN

    assert "starts with 'Bearer '" in caplog.text
    assert TOKEN not in caplog.text


def test_every_form_of_the_stored_token_is_registered_with_the_masker(sim, monkeypatch):
    from airflow.providers.common.compat.sdk import redact

    stored = f" bearer {TOKEN}\r\n"
    connect(monkeypatch, sim, stored)
    DevRevHook().settings  # noqa: B018  (reading the connection registers the token)

    text = f"a={stored!r} b={json.dumps(stored)} c={quote(stored)} d=Bearer {TOKEN} e={stored}"
    redacted = str(redact(text))
    for token in (stored, TOKEN):
        for form in escaped_forms(token):
            assert form not in redacted, form
    assert set(token_forms(stored)) >= {stored, stored.strip(), TOKEN, f"Bearer {TOKEN}", repr(stored)[1:-1]}


def test_a_refused_token_is_masked_too(sim, monkeypatch):
    from airflow.providers.common.compat.sdk import redact

    stored = f"{TOKEN[:20]}\n{TOKEN[20:]}"
    connect(monkeypatch, sim, stored)
    with pytest.raises(DevRevError):
        DevRevHook().settings  # noqa: B018

    assert repr(stored)[1:-1] not in str(redact(f"x={stored!r}"))


# -- errors the HTTP libraries raise before sending --------------------------------------------------------


@pytest.mark.parametrize("transport", ["sync", "async"])
@pytest.mark.parametrize(
    "broken",
    [
        pytest.param({"token": f"{TOKEN}\n"}, id="token with a newline"),
        pytest.param({"api_scope": "beta\r\nX-Injected: 1"}, id="header injection in an extra"),
        pytest.param({"base_url": "http://127.0.0.1:99999"}, id="port out of range"),
    ],
)
def test_a_request_the_http_library_refuses_is_final_never_retried_and_never_chained(sim, transport, broken):
    """Settings built directly, past the connection's checks: the transports' own defence."""
    sleep = FakeSleep()
    hook = DevRevHook(sleep=sleep, async_sleep=sleep.async_sleep)
    hook._use(dataclasses.replace(ConnectionSettings(base_url=sim.url, token=TOKEN), **broken))
    request = get_session_request("android", "s-1", VERSION)

    with pytest.raises(DevRevError) as caught:
        send(hook, transport, request)

    err = caught.value
    assert err.error_type == "invalid_request"
    assert "could not be sent" in str(err)
    assert "connection refused" not in str(err)
    assert sleep.waits == []
    assert sim.requests == []
    assert_no_token_in_chain(err, broken.get("token", TOKEN))


def test_a_port_out_of_range_in_the_host_is_refused_naming_the_host(sim, monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_DEVREV_DEFAULT",
        json.dumps({"conn_type": "devrev", "host": "http://127.0.0.1:99999", "password": TOKEN}),
    )
    with pytest.raises(DevRevError, match="host of connection 'devrev_default'"):
        DevRevHook().settings  # noqa: B018


# -- rotation ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("transport", ["sync", "async"])
def test_a_rotated_token_is_read_again_on_the_401_and_the_request_resent_at_once(
    sim, session, monkeypatch, lookups, caplog, capsys, transport
):
    caplog.set_level(logging.INFO)
    sleep = FakeSleep()
    hook = DevRevHook(sleep=sleep, async_sleep=sleep.async_sleep)
    rotate_at(sim, monkeypatch, 2)

    async def three_calls():
        return [await hook.aget_session("android", session["session_id"], VERSION) for _ in range(3)]

    if transport == "sync":
        got = [hook.get_session("android", session["session_id"], VERSION) for _ in range(3)]
    else:
        got = asyncio.run(three_calls())

    assert got == [session] * 3
    assert [(r.token, r.status) for r in sim.requests] == [(1, 200), (1, 401), (2, 200), (2, 200)]
    assert lookups == ["devrev_default", "devrev_default"], "one lookup at first use, one after the 401"
    assert sleep.waits == [], "the new token is used at once"
    out = capsys.readouterr().out
    # Airflow 3 logs through structlog (stdout), 2.11 through stdlib logging (caplog, and stdout too).
    line = "DevRev connection devrev_default changed; using the new token"
    assert max(caplog.text.count(line), out.count(line)) == 1
    for logged in (caplog.text, out):
        assert TOKEN not in logged
        assert NEW_TOKEN not in logged


@pytest.mark.parametrize("transport", ["sync", "async"])
def test_a_401_with_an_unchanged_connection_is_final_with_no_further_request(sim, lookups, transport):
    sim.revoke_token()
    hook = DevRevHook(sleep=FakeSleep())

    with pytest.raises(DevRevAuthError) as caught:
        fetch(hook, transport, "s-1")

    assert caught.value.error_type == "token_revoked"
    assert len(sim.requests) == 1
    assert lookups == ["devrev_default", "devrev_default"]
    assert_no_token_in_chain(caught.value, TOKEN)


def test_a_rotation_to_a_token_that_fails_too_is_final_after_one_resend(sim, monkeypatch, lookups):
    def rotate_to_a_wrong_one() -> None:
        sim.revoke_token()
        connect(monkeypatch, sim, NEW_TOKEN)

    sim.at_request(1, rotate_to_a_wrong_one)

    with pytest.raises(DevRevAuthError) as caught:
        DevRevHook(sleep=FakeSleep()).get_session("android", "s-1", VERSION)

    assert caught.value.error_type == "unauthenticated"
    assert [(r.token, r.status) for r in sim.requests] == [(1, 401), (None, 401)]
    assert len(lookups) == 2


def test_a_403_is_final_and_reads_nothing_again(sim, lookups):
    sim.add_fault("status", status=403, body={"type": "forbidden", "message": "no"})

    with pytest.raises(DevRevForbiddenError):
        DevRevHook(sleep=FakeSleep()).get_session("android", "s-1", VERSION)

    assert len(sim.requests) == 1
    assert lookups == ["devrev_default"]


def test_a_changed_host_is_followed_too(sim, session, monkeypatch, lookups):
    from airflow_provider_devrev.testing import DevRevSimulator

    with DevRevSimulator(token=NEW_TOKEN) as other:
        other.add_session(session, version_key=VERSION)

        def move() -> None:
            sim.revoke_token()
            connect(monkeypatch, other, NEW_TOKEN)

        sim.at_request(2, move)
        hook = DevRevHook(sleep=FakeSleep())
        got = [hook.get_session("android", session["session_id"], VERSION) for _ in range(3)]

        assert got == [session] * 3
        assert [r.status for r in sim.requests] == [200, 401]
        assert [r.status for r in other.requests] == [200, 200]
        assert hook.settings.base_url == other.url


def test_no_lookup_per_call_while_nothing_fails(sim, session, lookups):
    hook = DevRevHook(sleep=FakeSleep())
    for _ in range(10):
        hook.get_session("android", session["session_id"], VERSION)

    async def ten():
        async_hook = DevRevHook()
        for _ in range(10):
            await async_hook.aget_session("android", session["session_id"], VERSION)

    asyncio.run(ten())
    assert lookups == ["devrev_default", "devrev_default"]


@pytest.mark.parametrize("transport", ["sync", "async"])
def test_a_rotation_mid_pagination_resends_the_same_page(sim, monkeypatch, lookups, transport):
    from airflow_provider_devrev.listing import session_query

    for number in range(7):
        sim.add_session(sim.make_session("mobile", platform="android", session_id=f"rot-{number}"), version_key="rot@1")
    rotate_at(sim, monkeypatch, 3)
    hook = DevRevHook(sleep=FakeSleep())

    async def listed():
        return [s async for s in hook.aiter_sessions(session_query("android", "rot@1", page_size=2))]

    got = list(hook.iter_sessions("android", "rot@1", page_size=2)) if transport == "sync" else asyncio.run(listed())

    assert sorted(s["session_id"] for s in got) == [f"rot-{n}" for n in range(7)]
    pages = sim.requests_for(path=LIST)
    # Pages of 2, each after the first repeating the session (or instant) the one before ended on: the third
    # page meets the rotation and is asked for again with the new token, and the rest follow with it.
    assert [(r.token, r.status) for r in pages] == [(1, 200), (1, 200), (1, 401)] + [(2, 200)] * (len(pages) - 3)
    assert len(pages) >= 7
    assert (pages[2].query, pages[2].body) == (pages[3].query, pages[3].body), "the page is asked for again as it was"
    assert len(lookups) == 2


def test_get_sessions_workers_share_one_reread_and_fetch_everything(sim, monkeypatch, lookups):
    sessions = [sim.add_session(sim.make_session("mobile", platform="android"), version_key=VERSION) for _ in range(24)]
    rotate_at(sim, monkeypatch, 5)
    hook = DevRevHook(sleep=FakeSleep())

    got = hook.get_sessions("android", VERSION, [s["session_id"] for s in sessions], max_concurrency=8)

    assert got == sessions
    requests = sim.requests_for(path=GET)
    assert {r.token for r in requests if r.status == 401} == {1}
    assert {r.token for r in requests if r.status == 200} <= {1, 2}
    assert sum(r.status == 200 for r in requests) == 24
    # Each worker meets at most one 401 (a request it sent before the rotation), then uses the new token.
    assert 1 <= sum(r.status == 401 for r in requests) <= 8
    assert len(requests) == 24 + sum(r.status == 401 for r in requests)
    assert lookups == ["devrev_default", "devrev_default"], "the workers share one re-read"
    # The hook itself goes on with the new token.
    hook.get_session("android", sessions[0]["session_id"], VERSION)
    assert sim.requests[-1].token == 2


def test_triggers_on_one_loop_share_one_reread_bypassing_the_loops_cache(sim, session, monkeypatch, lookups):
    rotate_at(sim, monkeypatch, 11)

    async def scenario():
        hooks = [DevRevHook() for _ in range(10)]
        first = await asyncio.gather(*(h.aget_session("android", session["session_id"], VERSION) for h in hooks))
        second = await asyncio.gather(*(h.aget_session("android", session["session_id"], VERSION) for h in hooks))
        return first + second

    assert asyncio.run(scenario()) == [session] * 20
    assert lookups == ["devrev_default", "devrev_default"]
    tokens = [(r.token, r.status) for r in sim.requests]
    assert tokens[:10] == [(1, 200)] * 10
    assert sorted(tokens[10:]) == sorted([(1, 401)] * 10 + [(2, 200)] * 10)


# -- no token in any exception chain -----------------------------------------------------------------------

FAULTS = {
    "429 beyond max_retry_wait": lambda sim: sim.add_fault("rate_limit", retry_after=3600, times=None),
    "persistent 500": lambda sim: sim.add_fault("server_error", status=500, times=None),
    "HTML 502 from a proxy": lambda sim: sim.add_fault("server_error", status=502, times=None),
    "dropped connections": lambda sim: sim.add_fault("drop", times=None),
    "read timeouts": lambda sim: sim.add_fault("slow", delay=1.0, times=None),
    "truncated JSON 200": lambda sim: sim.add_fault("truncated_json"),
    "non-JSON 200": lambda sim: sim.add_fault("non_json"),
    "401 token_revoked": lambda sim: sim.add_fault("revoked", times=None),
    "400": lambda sim: sim.add_fault("status", status=400, body={"type": "bad_request", "message": "no"}),
    "403": lambda sim: sim.add_fault("status", status=403, body={"type": "forbidden", "message": "no"}),
    "404": lambda sim: sim.add_fault("status", status=404, body={"type": "not_found", "message": "no"}),
    "413": lambda sim: sim.add_fault("status", status=413, body={"type": "request_entity_too_large"}),
    "connection refused": lambda sim: sim.stop(),
}


@pytest.mark.parametrize("transport", ["sync", "async"])
@pytest.mark.parametrize("fault", list(FAULTS))
def test_no_error_of_the_fault_matrix_holds_the_token_in_its_chain(sim, monkeypatch, fault, transport):
    stored = f"bearer {TOKEN}\n"
    connect(monkeypatch, sim, stored)
    sleep = FakeSleep()
    hook = DevRevHook(sleep=sleep, async_sleep=sleep.async_sleep, max_retries=1, max_retry_wait=60, timeout=0.3)
    FAULTS[fault](sim)

    with pytest.raises(DevRevError) as caught:
        fetch(hook, transport, "s-1")

    assert_no_token_in_chain(caught.value, stored, TOKEN)
