"""
CA directories, as OpenSSL reads them (certificates named by their subject hash, ``openssl rehash``), in both
transports against an HTTPS simulator whose throw-away CA is stored in one: named by the ``ca_bundle`` extra, by
``REQUESTS_CA_BUNDLE`` or by ``SSL_CERT_DIR`` (with or without ``SSL_CERT_FILE``). Both transports must trust
exactly what the decision names, and fail alike, naming the directory, when it does not hold the CA.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from airflow_provider_devrev.exceptions import DevRevTLSError
from airflow_provider_devrev.testing import DevRevSimulator
from airflow_provider_devrev.testing.tls import ThrowawayTLS
from tests.fakes import FakeSleep
from tests.network.conftest import add_session, use_connection
from tests.network.test_transports import TRANSPORTS, failure, fetch

WHERE = ["extra ca_bundle", "REQUESTS_CA_BUNDLE", "SSL_CERT_DIR"]


def hashed_directory(directory: Path, *ca_files: str) -> str:
    """``directory`` holding ``ca_files`` under the names OpenSSL looks a CA up by (``openssl rehash``)."""
    directory.mkdir()
    for number, ca_file in enumerate(ca_files):
        shutil.copy(ca_file, directory / f"ca-{number}.pem")
    tool = shutil.which("openssl")
    command = [tool, "rehash", str(directory)] if tool else [shutil.which("c_rehash") or "c_rehash", str(directory)]
    if not (tool or shutil.which("c_rehash")):
        pytest.fail("these tests need the openssl command (Debian: apt-get install openssl) to hash a CA directory")
    subprocess.run(command, check=True, capture_output=True)
    hashed = [name for name in os.listdir(directory) if name.endswith(".0")]
    assert len(hashed) == len(ca_files), hashed
    return str(directory)


@pytest.fixture(scope="module")
def stranger() -> Iterator[ThrowawayTLS]:
    """Another throw-away CA: one that did not sign the simulator's certificate."""
    tls = ThrowawayTLS()
    yield tls
    tls.cleanup()


@pytest.fixture
def sim_ca_dir(https_sim, tmp_path) -> str:
    return hashed_directory(tmp_path / "sim-ca", https_sim.ca_file)


@pytest.fixture
def stranger_dir(stranger, tmp_path) -> str:
    return hashed_directory(tmp_path / "stranger-ca", stranger.ca_file)


def trust(monkeypatch, sim: DevRevSimulator, where: str, directory: str) -> None:
    """Name ``directory`` as the CAs in ``where``, and nowhere else."""
    if where == "extra ca_bundle":
        use_connection(monkeypatch, sim, ca_bundle=directory)
    else:
        use_connection(monkeypatch, sim, ca_bundle=None)
        monkeypatch.setenv(where, directory)


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("where", WHERE)
def test_a_hashed_directory_holding_the_ca_is_trusted(https_sim, sim_ca_dir, monkeypatch, transport, where):
    trust(monkeypatch, https_sim, where, sim_ca_dir)
    session = add_session(https_sim)

    assert fetch(transport, session) == session
    assert len(https_sim.requests) == 1


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("where", WHERE)
def test_a_directory_without_the_ca_fails_verification_naming_the_directory(
    https_sim, stranger_dir, monkeypatch, transport, where
):
    trust(monkeypatch, https_sim, where, stranger_dir)
    sleep = FakeSleep()

    error = failure(transport, add_session(https_sim), DevRevTLSError, sleep)

    text = str(error)
    assert "unable to get local issuer certificate" in text
    assert f"the directory {stranger_dir} ({where})" in text
    assert "openssl rehash" in text
    assert error.error_type == "tls_verification_failed"
    assert https_sim.connections_opened == 1
    assert https_sim.requests == []
    assert sleep.waits == []


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("holder", ["SSL_CERT_FILE", "SSL_CERT_DIR"])
def test_with_ssl_cert_file_and_ssl_cert_dir_both_are_trusted(
    https_sim, stranger, sim_ca_dir, stranger_dir, monkeypatch, transport, holder
):
    """Either of the two may hold the CA, as with OpenSSL: the other one is trusted alongside, not instead."""
    use_connection(monkeypatch, https_sim, ca_bundle=None)
    if holder == "SSL_CERT_FILE":
        monkeypatch.setenv("SSL_CERT_FILE", https_sim.ca_file)
        monkeypatch.setenv("SSL_CERT_DIR", stranger_dir)
    else:
        monkeypatch.setenv("SSL_CERT_FILE", stranger.ca_file)
        monkeypatch.setenv("SSL_CERT_DIR", sim_ca_dir)
    session = add_session(https_sim)

    assert fetch(transport, session) == session


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_ssl_cert_dir_may_list_several_directories(https_sim, sim_ca_dir, stranger_dir, monkeypatch, transport):
    use_connection(monkeypatch, https_sim, ca_bundle=None)
    monkeypatch.setenv("SSL_CERT_DIR", os.pathsep.join([stranger_dir, sim_ca_dir]))
    session = add_session(https_sim)

    assert fetch(transport, session) == session


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_requests_ca_bundle_comes_before_ssl_cert_dir(https_sim, sim_ca_dir, stranger_dir, monkeypatch, transport):
    use_connection(monkeypatch, https_sim, ca_bundle=None)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", stranger_dir)
    monkeypatch.setenv("SSL_CERT_DIR", sim_ca_dir)

    error = failure(transport, add_session(https_sim), DevRevTLSError, FakeSleep())

    assert f"the directory {stranger_dir} (REQUESTS_CA_BUNDLE)" in str(error)


def test_with_ssl_cert_dir_set_requests_does_not_fall_back_to_its_own_bundle(https_sim, stranger_dir, monkeypatch):
    """requests' bundle (certifi's) here holds the simulator's CA: trusting it as well would let the call pass."""
    import requests.adapters

    monkeypatch.setattr(requests.adapters, "DEFAULT_CA_BUNDLE_PATH", https_sim.ca_file)
    use_connection(monkeypatch, https_sim, ca_bundle=None)
    session = add_session(https_sim)
    assert fetch("requests", session) == session, "requests' bundle is the simulator's CA in this test"

    monkeypatch.setenv("SSL_CERT_DIR", stranger_dir)
    error = failure("requests", session, DevRevTLSError, FakeSleep())

    assert f"the directory {stranger_dir} (SSL_CERT_DIR)" in str(error)
