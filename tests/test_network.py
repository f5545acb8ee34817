"""The network decision (proxy, CAs, verification), table-driven: pure, no server needed."""

from __future__ import annotations

import pytest

from airflow_provider_devrev.connection import HookOptions, settings_from_connection
from airflow_provider_devrev.exceptions import DevRevInvalidInputError, DevRevProxyError, DevRevServerError
from airflow_provider_devrev.network import (
    NetworkSettings,
    Proxy,
    bypasses_proxy,
    network_settings,
    parse_proxy,
    proxy_failure,
    tls_error,
    tunnel_status,
)

BASE = "https://api.devrev.ai"
SECRET = "s3cr3t-proxy-pw"


@pytest.fixture
def ca(tmp_path):
    path = tmp_path / "ca.pem"
    path.write_text("-----BEGIN CERTIFICATE-----\n")
    return str(path)


@pytest.fixture
def other_ca(tmp_path):
    path = tmp_path / "other.pem"
    path.write_text("-----BEGIN CERTIFICATE-----\n")
    return str(path)


def decide(extra=None, env=None, base=BASE) -> NetworkSettings:
    return network_settings("conn", base, extra or {}, env or {})


PROXY_CASES = [
    # (extra, environment, expected proxy URL or None)
    ({}, {}, None),
    ({}, {"HTTPS_PROXY": "http://env:3128"}, "http://env:3128"),
    ({}, {"https_proxy": "http://lower:3128", "HTTPS_PROXY": "http://upper:3128"}, "http://lower:3128"),
    ({}, {"HTTP_PROXY": "http://plain:3128"}, None),  # an https base URL uses HTTPS_PROXY only
    ({}, {"HTTPS_PROXY": "env:8080"}, "http://env:8080"),  # no scheme: http:// assumed
    ({}, {"HTTPS_PROXY": "http://env"}, "http://env:80"),
    ({"proxy": "http://extra:3128"}, {"HTTPS_PROXY": "http://env:3128"}, "http://extra:3128"),
    ({"proxy": ""}, {"HTTPS_PROXY": "http://env:3128"}, "http://env:3128"),  # empty extra: the environment
    ({"proxy": None}, {"HTTPS_PROXY": "http://env:3128"}, "http://env:3128"),
    ({}, {"HTTPS_PROXY": "http://env:3128", "NO_PROXY": "devrev.ai"}, None),
    ({}, {"HTTPS_PROXY": "http://env:3128", "no_proxy": ".devrev.ai"}, None),
    ({}, {"HTTPS_PROXY": "http://env:3128", "NO_PROXY": "other.com, api.devrev.ai"}, None),
    ({}, {"HTTPS_PROXY": "http://env:3128", "NO_PROXY": "*"}, None),
    ({}, {"HTTPS_PROXY": "http://env:3128", "NO_PROXY": "evrev.ai"}, "http://env:3128"),  # not a suffix match
    ({}, {"HTTPS_PROXY": "http://env:3128", "NO_PROXY": "api.devrev.ai:8443"}, "http://env:3128"),
    ({}, {"HTTPS_PROXY": "http://env:3128", "NO_PROXY": "api.devrev.ai:443"}, None),
    # NO_PROXY is about the environment's proxy; an explicit proxy extra is for this connection.
    ({"proxy": "http://extra:3128"}, {"NO_PROXY": "*"}, "http://extra:3128"),
]


@pytest.mark.parametrize(("extra", "env", "expected"), PROXY_CASES)
def test_which_proxy(extra, env, expected):
    proxy = decide(extra, env).proxy
    assert (proxy.url if proxy else None) == expected


@pytest.mark.parametrize(
    ("base", "env", "expected"),
    [
        ("http://127.0.0.1:8080", {"HTTP_PROXY": "http://p:1"}, "http://p:1"),
        ("http://127.0.0.1:8080", {"HTTPS_PROXY": "http://p:1"}, None),
        ("http://127.0.0.1:8080", {"HTTP_PROXY": "http://p:1", "NO_PROXY": "127.0.0.0/8"}, None),
        ("http://127.0.0.1:8080", {"HTTP_PROXY": "http://p:1", "NO_PROXY": "127.0.0.1"}, None),
        ("http://localhost:8080", {"HTTP_PROXY": "http://p:1", "NO_PROXY": "localhost"}, None),
        ("https://10.1.2.3", {"HTTPS_PROXY": "http://p:1", "NO_PROXY": "10.0.0.0/8"}, None),
        ("https://11.1.2.3", {"HTTPS_PROXY": "http://p:1", "NO_PROXY": "10.0.0.0/8"}, "http://p:1"),
    ],
)
def test_which_proxy_by_scheme_and_address(base, env, expected):
    proxy = decide({}, env, base=base).proxy
    assert (proxy.url if proxy else None) == expected


def test_which_ca(ca, other_ca):
    assert (decide().ca_bundle, decide().ca_source) == (None, None)
    assert decide({"ca_bundle": ca}).ca_bundle == ca
    assert decide({}, {"REQUESTS_CA_BUNDLE": ca}).ca_source == "REQUESTS_CA_BUNDLE"
    assert decide({}, {"SSL_CERT_FILE": ca}).ca_source == "SSL_CERT_FILE"
    assert decide({}, {"REQUESTS_CA_BUNDLE": ca, "SSL_CERT_FILE": other_ca}).ca_bundle == ca
    both = decide({"ca_bundle": other_ca}, {"REQUESTS_CA_BUNDLE": ca})
    assert (both.ca_bundle, both.ca_source) == (other_ca, "extra ca_bundle")
    # Plain http to loopback has no TLS: no CA is read, not even a broken one.
    assert decide({}, {"REQUESTS_CA_BUNDLE": "/nowhere.pem"}, base="http://127.0.0.1:1").ca_bundle is None


@pytest.mark.parametrize(
    ("value", "expected"), [(None, True), ("", True), (True, True), ("false", False), ("0", False), (False, False)]
)
def test_verify_tls(value, expected):
    assert decide({"verify_tls": value}).verify is expected


def test_the_default_is_the_fast_path_and_the_transport_arguments_follow(ca):
    assert decide().is_default
    assert decide().requests_proxies() == {}
    assert decide().requests_verify() is True
    assert decide({"ca_bundle": ca}).requests_verify() == ca
    assert decide({"verify_tls": "false"}).requests_verify() is False
    proxied = decide({"proxy": f"http://me:{SECRET}@p:3128"})
    assert proxied.requests_proxies() == {"http": f"http://me:{SECRET}@p:3128", "https": f"http://me:{SECRET}@p:3128"}
    assert not proxied.is_default


@pytest.mark.parametrize(
    ("extra", "names"),
    [
        ({"proxy": "socks5://p:1080"}, ["extra proxy of connection 'conn'", "http://"]),
        ({"proxy": f"https://me:{SECRET}@p:3128"}, ["extra proxy", "me:***@p:3128"]),
        ({"proxy": "http://:3128"}, ["extra proxy", "host"]),
        ({"proxy": "http://p:notaport"}, ["extra proxy"]),
        ({"proxy": 3128}, ["extra proxy"]),
        ({"ca_bundle": "/no/such/ca.pem"}, ["extra ca_bundle of connection 'conn'", "/no/such/ca.pem", "PEM file"]),
        ({"verify_tls": "maybe"}, ["verify_tls", "'maybe'", "true or false"]),
    ],
)
def test_a_bad_extra_fails_naming_it_and_never_showing_a_password(extra, names):
    with pytest.raises(DevRevInvalidInputError) as caught:
        decide(extra)
    assert all(name in str(caught.value) for name in names), str(caught.value)
    assert SECRET not in str(caught.value)
    assert SECRET not in repr(caught.value.value)


def test_a_bad_environment_value_names_the_variable():
    with pytest.raises(DevRevInvalidInputError, match="environment variable HTTPS_PROXY"):
        decide({}, {"HTTPS_PROXY": "socks5://p:1"})
    with pytest.raises(DevRevInvalidInputError, match="environment variable SSL_CERT_FILE"):
        decide({}, {"SSL_CERT_FILE": "/no/such.pem"})


def test_proxy_credentials_are_decoded_kept_apart_and_shown_without_the_password():
    proxy = parse_proxy(f"http://us%40er:{SECRET}%2F@p.example:3128/", "proxy", source="extra proxy")
    assert (proxy.url, proxy.username, proxy.password) == ("http://p.example:3128", "us@er", SECRET + "/")
    assert proxy.display == "http://us%40er:***@p.example:3128"
    assert SECRET not in repr(proxy)
    assert proxy.url_with_credentials() == f"http://us%40er:{SECRET}%2F@p.example:3128"
    assert parse_proxy("http://p:1", "proxy", source="x").display == "http://p:1"


def test_connection_settings_carry_the_decision_from_uri_strings(ca):
    settings = settings_from_connection(
        "conn",
        host="https://api.devrev.ai",
        port=None,
        password="token-12345",
        extra={"proxy": "http://p:3128", "ca_bundle": ca, "verify_tls": "true"},
        options=HookOptions(),
        environ={"HTTPS_PROXY": "http://ignored:1"},
    )
    assert settings.network == NetworkSettings(
        proxy=Proxy("http://p:3128"), ca_bundle=ca, ca_source="extra ca_bundle", verify=True
    )


@pytest.mark.parametrize(("status", "final"), [(407, True), (403, True), (None, False), (502, False), (503, False)])
def test_a_proxy_4xx_is_final_a_proxy_down_or_5xx_is_transient(status, final):
    proxy = Proxy("http://p:3128", "me", SECRET)
    error = proxy_failure("GET /x", BASE, proxy, status)
    assert isinstance(error, DevRevProxyError) is final
    assert isinstance(error, DevRevServerError) is not final
    assert "http://me:***@p:3128" in str(error)
    assert SECRET not in str(error)
    assert SECRET not in repr(error)
    assert "connection refused" not in str(error) or not final


def test_the_tls_message_says_what_failed_and_suggests_ca_bundle(ca):
    error = tls_error("GET /x", BASE, decide({"ca_bundle": ca}), "certificate has expired")
    text = str(error)
    assert "certificate has expired" in text
    assert "ca_bundle" in text
    assert ca in text
    assert "connection refused" not in text
    assert error.status_code is None
    assert error.error_type == "tls_verification_failed"


def test_tunnel_status_is_read_from_a_wrapped_http_client_error():
    inner = OSError("Tunnel connection failed: 407 Proxy Authentication Required")
    outer = RuntimeError("Max retries exceeded")
    outer.reason = ValueError("Unable to connect to proxy", inner)  # type: ignore[attr-defined]
    assert tunnel_status(outer) == 407
    assert tunnel_status(RuntimeError("nothing")) is None


@pytest.mark.parametrize(
    ("host", "port", "no_proxy", "expected"),
    [
        ("api.devrev.ai", 443, "", False),
        ("api.devrev.ai", 443, " , ", False),
        ("API.DevRev.ai", 443, "devrev.ai", True),
        ("::1", 443, "::1", True),
        ("::1", 443, "[::1]:443", True),
        ("127.0.0.1", 8080, "127.0.0.1:8080", True),
        ("127.0.0.1", 8080, "127.0.0.1:9090", False),
        ("127.0.0.1", 8080, "not/a-cidr", False),
    ],
)
def test_bypasses_proxy(host, port, no_proxy, expected):
    assert bypasses_proxy(host, port, no_proxy) is expected
