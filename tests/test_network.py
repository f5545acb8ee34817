"""The network decision (proxy, CAs, verification), table-driven: pure, no server needed."""

from __future__ import annotations

import dataclasses
import os

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


def hashed(directory) -> str:
    """A directory as ``openssl rehash`` leaves it (the decision reads the names only)."""
    directory.mkdir()
    (directory / "ca.pem").write_text("-----BEGIN CERTIFICATE-----\n")
    (directory / "9d66eef0.0").symlink_to("ca.pem")
    return str(directory)


@pytest.fixture
def ca_dir(tmp_path):
    return hashed(tmp_path / "certs")


@pytest.fixture
def other_dir(tmp_path):
    return hashed(tmp_path / "more-certs")


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


def trusted(extra=None, env=None) -> tuple:
    network = decide(extra, env)
    return network.ca_file, network.ca_dir, network.ca_source


def test_which_ca_in_order_extra_then_requests_ca_bundle_then_openssls_two_then_the_default(
    ca, other_ca, ca_dir, other_dir
):
    everything = {"REQUESTS_CA_BUNDLE": other_ca, "SSL_CERT_FILE": other_ca, "SSL_CERT_DIR": other_dir}
    assert trusted() == (None, None, None)
    assert trusted({"ca_bundle": ca}, everything) == (ca, None, "extra ca_bundle")
    assert trusted({"ca_bundle": ca_dir}, everything) == (None, ca_dir, "extra ca_bundle")
    assert trusted({"ca_bundle": ""}, {"REQUESTS_CA_BUNDLE": ca}) == (ca, None, "REQUESTS_CA_BUNDLE")
    assert trusted({}, {**everything, "REQUESTS_CA_BUNDLE": ca_dir}) == (None, ca_dir, "REQUESTS_CA_BUNDLE")
    assert trusted({}, {"REQUESTS_CA_BUNDLE": " ", "SSL_CERT_FILE": ca}) == (ca, None, "SSL_CERT_FILE")
    assert trusted({}, {"SSL_CERT_DIR": ca_dir}) == (None, ca_dir, "SSL_CERT_DIR")
    # Both of OpenSSL's: both trusted, as OpenSSL does.
    both = (ca, ca_dir, "SSL_CERT_FILE and SSL_CERT_DIR")
    assert trusted({}, {"SSL_CERT_FILE": ca, "SSL_CERT_DIR": ca_dir}) == both
    # Several directories, separated as PATH is; empty entries ignored.
    listed = f"{ca_dir}{os.pathsep}{os.pathsep}{other_dir}"
    assert trusted({}, {"SSL_CERT_DIR": listed}) == (None, f"{ca_dir}{os.pathsep}{other_dir}", "SSL_CERT_DIR")
    # Plain http to loopback has no TLS: no CA is read, not even a broken one.
    plain = decide({}, {"REQUESTS_CA_BUNDLE": "/nowhere.pem"}, base="http://127.0.0.1:1")
    assert (plain.ca_file, plain.ca_dir) == (None, None)


def test_the_trust_is_described_by_path_and_source(ca, ca_dir):
    assert decide({"ca_bundle": ca_dir}).trust_description() == f"the CAs in the directory {ca_dir} (extra ca_bundle)"
    assert decide({}, {"SSL_CERT_FILE": ca, "SSL_CERT_DIR": ca_dir}).trust_description() == (
        f"the CAs in the file {ca} and the directory {ca_dir} (SSL_CERT_FILE and SSL_CERT_DIR)"
    )
    default = decide().trust_description()
    assert "certifi" in default
    assert all(name in default for name in ("ca_bundle", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR"))


def test_requests_gets_one_path_as_verify_or_the_transport_sets_a_combined_trust(ca, ca_dir, other_dir):
    assert decide({"ca_bundle": ca_dir}).requests_verify() == ca_dir
    assert not decide({"ca_bundle": ca_dir}).combined_trust
    assert decide({}, {"SSL_CERT_DIR": ca_dir}).requests_verify() == ca_dir
    for env in ({"SSL_CERT_FILE": ca, "SSL_CERT_DIR": ca_dir}, {"SSL_CERT_DIR": f"{ca_dir}{os.pathsep}{other_dir}"}):
        assert decide({}, env).combined_trust
        assert decide({}, env).requests_verify() is True
    off = decide({"verify_tls": "false"}, {"SSL_CERT_FILE": ca, "SSL_CERT_DIR": ca_dir})
    assert (off.combined_trust, off.requests_verify()) == (False, False)


def test_the_settings_stay_hashable_and_equal_for_equal_decisions(ca, ca_dir):
    env = {"SSL_CERT_FILE": ca, "SSL_CERT_DIR": ca_dir}
    assert hash(decide({}, env)) == hash(decide({}, dict(env)))
    assert decide({}, env) == decide({}, dict(env))
    assert decide({}, env) != decide({"ca_bundle": ca_dir})
    with pytest.raises(dataclasses.FrozenInstanceError):
        decide().ca_dir = ca_dir  # type: ignore[misc]


def unhashed(tmp_path) -> str:
    directory = tmp_path / "pems"
    directory.mkdir()
    (directory / "company-ca.pem").write_text("-----BEGIN CERTIFICATE-----\n")
    return str(directory)


@pytest.mark.parametrize(
    ("where", "make", "says"),
    [
        ("extra", lambda tmp: "/no/such/ca", "readable PEM file"),
        ("extra", lambda tmp: "/dev/null", "readable PEM file"),
        ("extra", unhashed, "openssl rehash"),
        ("REQUESTS_CA_BUNDLE", lambda tmp: "/no/such/ca", "or a directory"),
        ("REQUESTS_CA_BUNDLE", unhashed, "holds no certificate named by its hash"),
        ("SSL_CERT_FILE", lambda tmp: "/no/such.pem", "readable PEM file"),
        ("SSL_CERT_FILE", lambda tmp: str(tmp), "(a directory goes in SSL_CERT_DIR)"),
        ("SSL_CERT_DIR", lambda tmp: "/no/such/dir", "is not a directory"),
        ("SSL_CERT_DIR", lambda tmp: f"{hashed(tmp / 'ok')}{os.pathsep}/no/such/dir", "'/no/such/dir' is not a"),
        ("SSL_CERT_DIR", unhashed, "openssl rehash"),
    ],
)
def test_a_ca_path_that_cannot_serve_fails_before_any_request_naming_where_and_the_value(tmp_path, where, make, says):
    value = make(tmp_path)
    with pytest.raises(DevRevInvalidInputError) as caught:
        decide({"ca_bundle": value}) if where == "extra" else decide({}, {where: value})

    text = str(caught.value)
    assert ("extra ca_bundle of connection 'conn'" if where == "extra" else f"environment variable {where}") in text
    assert repr(value)[:60] in text  # long values are shortened for the message (exceptions._show)
    assert says in text


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
    assert not decide({"ca_bundle": ca}).is_default
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
        ({"ca_bundle": 42}, ["extra ca_bundle of connection 'conn'", "42", "PEM file"]),
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
        proxy=Proxy("http://p:3128"), ca_file=ca, ca_source="extra ca_bundle", verify=True
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
