"""
Both transports (requests on workers, aiohttp in triggers) against an HTTPS simulator, directly and through
a real forward proxy (proxy.py on 127.0.0.1): the same inputs must take the same route with the same trust,
and fail the same way.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from datetime import UTC, datetime, timedelta

import pytest

from airflow_provider_devrev.exceptions import DevRevProxyError, DevRevServerError, DevRevTLSError
from airflow_provider_devrev.hooks.devrev import DevRevHook
from airflow_provider_devrev.network import exception_chain
from airflow_provider_devrev.testing import DevRevSimulator
from tests.fakes import FakeSleep
from tests.network.conftest import PROXY_PASSWORD, PROXY_USER, VERSION_KEY, add_session, use_connection

TRANSPORTS = ["requests", "aiohttp"]


def fetch(transport: str, session: dict, **hook_kwargs) -> dict:
    """One get_session through the transport, with a fresh hook (the connection is read anew)."""
    hook = DevRevHook(**hook_kwargs)
    try:
        if transport == "requests":
            return hook.get_session("android", session["session_id"], VERSION_KEY)
        return asyncio.run(hook.aget_session("android", session["session_id"], VERSION_KEY))
    finally:
        hook.close()


def failure(transport: str, session: dict, expected: type[Exception], sleep: FakeSleep) -> Exception:
    kwargs = {"sleep": sleep} if transport == "requests" else {"async_sleep": sleep.async_sleep}
    with pytest.raises(expected) as caught:
        fetch(transport, session, max_retries=3, **kwargs)
    return caught.value


def logged_count(caplog, out, text: str) -> int:
    """
    How many times ``text`` was logged: from the stdlib records when Airflow routes our logger there (2.11,
    3.0; their console then echoes each record, once or twice), else from the console (3.3's structlog).
    """
    return caplog.text.count(text) or " ".join((out.out + out.err).split()).count(text)


def chain_text(error: BaseException) -> str:
    return "\n".join(f"{link}\n{link!r}" for link in exception_chain(error))


# -- TLS ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_https_with_the_ca_bundle_extra_works(https_sim, transport):
    session = add_session(https_sim)

    assert fetch(transport, session) == session
    assert len(https_sim.requests) == 1


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize(
    ("certificate", "trust_ca", "reason"),
    [
        ("valid", False, "unable to get local issuer certificate"),
        ("wrong_host", True, "certificate is not valid for '127.0.0.1'"),
        ("expired", True, "certificate has expired"),
    ],
)
def test_a_certificate_that_does_not_verify_fails_at_once_final_and_says_why(
    monkeypatch, transport, certificate, trust_ca, reason
):
    sleep = FakeSleep()
    with DevRevSimulator(tls=True, tls_certificate=certificate) as sim:
        use_connection(monkeypatch, sim, **({} if trust_ca else {"ca_bundle": None}))
        error = failure(transport, add_session(sim), DevRevTLSError, sleep)

        text = str(error)
        assert reason in text
        assert "ca_bundle" in text
        assert "connection refused" not in text
        assert error.error_type == "tls_verification_failed"
        # One attempt: one TCP connection, refused at the handshake; no HTTP request, no retry wait.
        assert sim.connections_opened == 1
        assert sim.requests == []
        assert sleep.waits == []


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("variable", ["REQUESTS_CA_BUNDLE", "SSL_CERT_FILE"])
def test_the_ca_from_the_environment_alone_works(https_sim, monkeypatch, transport, variable):
    use_connection(monkeypatch, https_sim, ca_bundle=None)
    monkeypatch.setenv(variable, https_sim.ca_file)
    session = add_session(https_sim)

    assert fetch(transport, session) == session


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_verify_tls_false_works_without_the_ca_and_warns_once_naming_the_connection(
    https_sim, monkeypatch, transport, caplog, capsys
):
    use_connection(monkeypatch, https_sim, ca_bundle=None, verify_tls="false")
    caplog.set_level(logging.WARNING)
    session = add_session(https_sim)

    hook = DevRevHook()
    if transport == "requests":
        got = [hook.get_session("android", session["session_id"], VERSION_KEY) for _ in range(2)]
    else:

        async def twice():
            return [await hook.aget_session("android", session["session_id"], VERSION_KEY) for _ in range(2)]

        got = asyncio.run(twice())
    hook.close()

    assert got == [session, session]
    out = capsys.readouterr()
    assert logged_count(caplog, out, "verify_tls=false") == 1
    assert "'devrev_default'" in caplog.text + out.out + out.err


# -- proxies -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_through_the_proxy_extra(https_sim, proxy, monkeypatch, transport):
    use_connection(monkeypatch, https_sim, proxy=proxy.url())
    session = add_session(https_sim)

    assert fetch(transport, session) == session
    assert proxy.connects() == [f"127.0.0.1:{https_sim.port}"]


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("variable", ["HTTPS_PROXY", "https_proxy"])
def test_through_the_environment_proxy(https_sim, proxy, monkeypatch, transport, variable):
    monkeypatch.setenv(variable, proxy.url())
    session = add_session(https_sim)

    assert fetch(transport, session) == session
    assert proxy.connects() == [f"127.0.0.1:{https_sim.port}"]


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("no_proxy", ["127.0.0.1", "127.0.0.0/8", "*"])
def test_no_proxy_covering_the_host_bypasses_the_environment_proxy(https_sim, proxy, monkeypatch, transport, no_proxy):
    monkeypatch.setenv("HTTPS_PROXY", proxy.url())
    monkeypatch.setenv("NO_PROXY", no_proxy)
    session = add_session(https_sim)

    assert fetch(transport, session) == session
    assert proxy.forwarded() == []


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_proxy_basic_auth_with_the_right_credentials(https_sim, secured_proxy, monkeypatch, transport):
    use_connection(monkeypatch, https_sim, proxy=secured_proxy.url(f"{PROXY_USER}:{PROXY_PASSWORD}"))
    session = add_session(https_sim)

    assert fetch(transport, session) == session
    assert secured_proxy.connects() == [f"127.0.0.1:{https_sim.port}"]
    assert secured_proxy.auth_failures() == 0


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("where", ["extra", "environment"])
def test_wrong_proxy_credentials_fail_at_once_with_407_and_the_password_appears_nowhere(
    https_sim, secured_proxy, monkeypatch, transport, where, caplog, capsys
):
    wrong = f"{PROXY_USER}:{PROXY_PASSWORD}-wrong"
    if where == "extra":
        use_connection(monkeypatch, https_sim, proxy=secured_proxy.url(wrong))
    else:
        monkeypatch.setenv("HTTPS_PROXY", secured_proxy.url(wrong))
    caplog.set_level(logging.DEBUG)
    sleep = FakeSleep()

    error = failure(transport, add_session(https_sim), DevRevProxyError, sleep)

    assert "407" in str(error)
    assert f"http://{PROXY_USER}:***@127.0.0.1:{secured_proxy.port}" in str(error)
    assert error.__cause__ is None
    assert error.__context__ is None
    assert secured_proxy.auth_failures() == 1
    assert secured_proxy.forwarded() == []
    assert https_sim.connections_opened == 0
    assert sleep.waits == []
    out = capsys.readouterr()
    for where_seen, text in {
        "error and its chain": chain_text(error),
        "logs": caplog.text + out.out + out.err,
    }.items():
        assert PROXY_PASSWORD not in text, where_seen


@pytest.mark.parametrize("reader", ["sync", "async"])
def test_the_proxy_password_is_registered_with_the_secret_masker(https_sim, secured_proxy, monkeypatch, reader):
    from airflow.providers.common.compat.sdk import redact

    # A password of this test alone: the masker is global, and another test's registration must not count.
    password = f"proxy-{reader}-{secrets.token_hex(8)}"
    assert password in str(redact(f"proxy password={password}"))
    use_connection(monkeypatch, https_sim, proxy=secured_proxy.url(f"{PROXY_USER}:{password}"))
    # Reading the connection registers its secrets; the triggerer reads it with aget_settings.
    if reader == "sync":
        DevRevHook().settings  # noqa: B018
    else:
        asyncio.run(DevRevHook().aget_settings())

    assert password not in str(redact(f"proxy password={password}"))


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_proxy_that_is_down_is_a_transient_connection_error_retried_like_a_down_devrev(
    https_sim, monkeypatch, transport
):
    stopped = type(https_sim)  # any free port: a proxy started and stopped leaves nothing listening
    with stopped() as placeholder:
        dead_port = placeholder.port
    use_connection(monkeypatch, https_sim, proxy=f"http://{PROXY_USER}:{PROXY_PASSWORD}@127.0.0.1:{dead_port}")
    sleep = FakeSleep()

    error = failure(transport, add_session(https_sim), DevRevServerError, sleep)

    assert error.error_type == "connection_error"
    assert f"127.0.0.1:{dead_port}" in str(error)
    assert len(sleep.waits) == 3  # retried max_retries times, as any connection error
    assert PROXY_PASSWORD not in chain_text(error)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_tls_failure_behind_a_proxy_is_a_tls_error_not_a_proxy_error(https_sim, proxy, monkeypatch, transport):
    use_connection(monkeypatch, https_sim, ca_bundle=None, proxy=proxy.url())
    error = failure(transport, add_session(https_sim), DevRevTLSError, FakeSleep())

    assert "unable to get local issuer certificate" in str(error)
    assert f"through the proxy {proxy.url()}" in str(error)
    assert proxy.connects() == [f"127.0.0.1:{https_sim.port}"]


# -- listing, and one pool for triggers of different connections ---------------------------------------------


def test_iter_sessions_pages_through_the_proxy_over_tls(https_sim, proxy, monkeypatch):
    use_connection(monkeypatch, https_sim, proxy=proxy.url())
    # A second apart: sessions made in the same millisecond share an instant, which is then listed by itself,
    # and the number of pages would depend on the machine's speed (8 on a loaded run).
    start = datetime(2025, 6, 1, tzinfo=UTC)
    sessions = [
        https_sim.add_session(
            https_sim.make_session("mobile", platform="android", created_at=start + timedelta(seconds=n)),
            version_key=VERSION_KEY,
        )
        for n in range(5)
    ]

    hook = DevRevHook()
    listed = list(hook.iter_sessions("android", VERSION_KEY, page_size=2))
    hook.close()

    assert sorted(s["session_id"] for s in listed) == sorted(s["session_id"] for s in sessions)
    # Pages of 2, each after the first repeating the instant the one before ended on: one new session a page.
    assert 4 <= len(https_sim.requests) <= 6
    # One keep-alive tunnel serves every page.
    assert proxy.connects() == [f"127.0.0.1:{https_sim.port}"]


def test_get_sessions_worker_threads_take_the_same_route_and_trust(https_sim, secured_proxy, monkeypatch):
    use_connection(monkeypatch, https_sim, proxy=secured_proxy.url(f"{PROXY_USER}:{PROXY_PASSWORD}"))
    sessions = [add_session(https_sim) for _ in range(6)]

    got = DevRevHook().get_sessions("android", VERSION_KEY, [s["session_id"] for s in sessions], max_concurrency=3)

    assert got == sessions
    assert set(secured_proxy.connects()) == {f"127.0.0.1:{https_sim.port}"}
    assert secured_proxy.auth_failures() == 0


def test_aiter_sessions_pages_through_the_proxy_over_tls(https_sim, proxy, monkeypatch):
    from airflow_provider_devrev.listing import session_query

    use_connection(monkeypatch, https_sim, proxy=proxy.url())
    sessions = [add_session(https_sim) for _ in range(5)]

    async def listed():
        hook = DevRevHook()
        return [s async for s in hook.aiter_sessions(session_query("android", VERSION_KEY, page_size=2))]

    assert sorted(s["session_id"] for s in asyncio.run(listed())) == sorted(s["session_id"] for s in sessions)
    assert proxy.connects() == [f"127.0.0.1:{https_sim.port}"]


def test_one_pool_serves_connections_with_different_routes_and_cas_without_mixing_them(proxy, monkeypatch):
    from airflow_provider_devrev.hooks import _async_transport

    with DevRevSimulator(tls=True) as direct, DevRevSimulator(tls=True) as proxied:
        monkeypatch.setenv("AIRFLOW_CONN_DIRECT", direct.connection_json())
        monkeypatch.setenv("AIRFLOW_CONN_PROXIED", proxied.connection_json(proxy=proxy.url()))
        one, two = add_session(direct), add_session(proxied)

        async def both():
            async with _async_transport.shared_session() as pool:
                hooks = [DevRevHook("direct"), DevRevHook("proxied"), DevRevHook("direct"), DevRevHook("proxied")]
                pairs = zip(hooks, [one, two] * 2, strict=True)
                got = await asyncio.gather(*(h.aget_session("android", s["session_id"], VERSION_KEY) for h, s in pairs))
                settings = [await h.aget_settings() for h in hooks]
                return got, pool, settings

        got, pool, settings = asyncio.run(both())

        assert got == [one, two, one, two]
        # Each distinct setting built its TLS context once; the two hooks of one connection share it.
        assert _async_transport.route(settings[0].network) is _async_transport.route(settings[2].network)
        assert (
            _async_transport.route(settings[0].network)["ssl"] is not _async_transport.route(settings[1].network)["ssl"]
        )
        assert pool.closed
        # The proxied connection went through the proxy (its tunnels), the direct one never did.
        assert set(proxy.connects()) == {f"127.0.0.1:{proxied.port}"}
        assert len(direct.requests) == 2
        assert len(proxied.requests) == 2


def test_the_default_setting_adds_nothing_to_a_request():
    from airflow_provider_devrev.hooks._async_transport import route
    from airflow_provider_devrev.network import NetworkSettings

    assert route(NetworkSettings()) == {}
