"""
Fixtures of the corporate-network tests: a clean network environment, HTTPS simulators, and real forward
proxies (``proxy.py`` processes on 127.0.0.1, one open, one demanding basic auth).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from airflow_provider_devrev.testing import DevRevSimulator
from tests.network.forward_proxy import ForwardProxy

#: The environment variables the network decision reads; a developer's or CI's own must not leak in.
NETWORK_ENV = (
    "HTTPS_PROXY",
    "HTTP_PROXY",
    "NO_PROXY",
    "REQUESTS_CA_BUNDLE",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "ALL_PROXY",
)
PROXY_USER = "airflow-egress"
# Fixed, not random: this module is imported twice (as a conftest, and by the tests that import from it).
PROXY_PASSWORD = "proxy-pw-7f3c9a1e5b2d4c68"
VERSION_KEY = "network@1"


@pytest.fixture(autouse=True)
def clean_network_env(monkeypatch):
    for name in NETWORK_ENV:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


@pytest.fixture(scope="module")
def open_proxy() -> Iterator[ForwardProxy]:
    proxy = ForwardProxy().start()
    try:
        yield proxy
    finally:
        proxy.stop()


@pytest.fixture(scope="module")
def auth_proxy() -> Iterator[ForwardProxy]:
    proxy = ForwardProxy(basic_auth=f"{PROXY_USER}:{PROXY_PASSWORD}").start()
    try:
        yield proxy
    finally:
        proxy.stop()


@pytest.fixture
def proxy(open_proxy) -> ForwardProxy:
    open_proxy.clear()
    return open_proxy


@pytest.fixture
def secured_proxy(auth_proxy) -> ForwardProxy:
    auth_proxy.clear()
    return auth_proxy


@pytest.fixture
def https_sim(monkeypatch) -> Iterator[DevRevSimulator]:
    """An HTTPS simulator; ``AIRFLOW_CONN_DEVREV_DEFAULT`` trusts its CA (the ``ca_bundle`` extra)."""
    with DevRevSimulator(tls=True) as sim:
        monkeypatch.setenv("AIRFLOW_CONN_DEVREV_DEFAULT", sim.connection_json())
        yield sim


def use_connection(monkeypatch, sim: DevRevSimulator, **extra) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_DEVREV_DEFAULT", sim.connection_json(**extra))


def add_session(sim: DevRevSimulator, **kwargs) -> dict:
    return sim.add_session(sim.make_session("mobile", platform="android"), version_key=VERSION_KEY, **kwargs)
