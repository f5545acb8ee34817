"""The simulator over HTTPS: its throw-away CA, its broken certificates, the fixture's marker and ``--tls``."""

from __future__ import annotations

import json
import os
import shlex
import signal
import socket
import ssl
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote

import pytest
import requests

from airflow_provider_devrev.testing import DevRevSimulator
from tests.testing.test_plugin_and_cli import TIMEOUT, LineReader


def status_of(sim: DevRevSimulator, verify: bool | str) -> int:
    with requests.Session() as http:
        http.trust_env = False  # this machine's REQUESTS_CA_BUNDLE must not decide
        auth = {"Authorization": f"Bearer {sim.token}"}
        response = http.get(sim.url + "/dev-users.self", headers=auth, verify=verify, timeout=TIMEOUT)
        return response.status_code


def test_tls_serves_https_trusted_through_its_own_ca_only():
    with DevRevSimulator(tls=True) as sim:
        assert sim.url.startswith("https://127.0.0.1:")
        assert Path(sim.ca_file).read_text().startswith("-----BEGIN CERTIFICATE-----")
        assert status_of(sim, sim.ca_file) == 200
        with pytest.raises(requests.exceptions.SSLError, match="unable to get local issuer certificate"):
            status_of(sim, True)
        # The handshake that failed was counted as a connection; it never became a request.
        assert sim.connections_opened == 2
        assert len(sim.requests) == 1


def test_a_stopped_and_restarted_tls_simulator_keeps_its_port_and_ca():
    sim = DevRevSimulator(tls=True).start()
    port, ca = sim.port, sim.ca_file
    sim.stop()
    sim.start()
    try:
        assert (sim.port, sim.ca_file) == (port, ca)
        assert status_of(sim, ca) == 200
    finally:
        sim.stop()


@pytest.mark.parametrize(
    ("certificate", "reason"),
    [("wrong_host", "certificate is not valid for '127.0.0.1'"), ("expired", "certificate has expired")],
)
def test_broken_certificates_fail_verification_for_exactly_their_reason(certificate, reason):
    with DevRevSimulator(tls=True, tls_certificate=certificate) as sim:
        context = ssl.create_default_context(cafile=sim.ca_file)
        with (
            pytest.raises(ssl.SSLCertVerificationError) as caught,
            socket.create_connection((sim.host, sim.port), timeout=TIMEOUT) as raw,
        ):
            context.wrap_socket(raw, server_hostname=sim.host)
        assert reason in caught.value.verify_message


def test_an_unknown_certificate_kind_is_refused():
    with pytest.raises(ValueError, match="tls_certificate must be one of valid, wrong_host, expired"):
        DevRevSimulator(tls=True, tls_certificate="self_signed")


def test_connection_strings_carry_the_ca_unless_told_not_to():
    with DevRevSimulator(tls=True) as sim:
        assert json.loads(sim.connection_json())["extra"] == {"ca_bundle": sim.ca_file}
        assert json.loads(sim.connection_json(ca_bundle=None))["extra"] == {"ca_bundle": None}
        uri = sim.connection_uri()
        assert unquote(uri).split("@", 1)[1].startswith(f"https://127.0.0.1:{sim.port}/?ca_bundle=")
        assert unquote(uri).endswith(sim.ca_file)
    with DevRevSimulator() as plain:
        assert plain.ca_file is None
        assert json.loads(plain.connection_json())["extra"] == {}


@pytest.mark.devrev_simulator(tls=True)
def test_the_fixture_serves_https_when_its_marker_asks(devrev_simulator):
    conn = json.loads(os.environ["AIRFLOW_CONN_DEVREV_DEFAULT"])
    assert conn["host"] == devrev_simulator.url
    assert conn["extra"]["ca_bundle"] == devrev_simulator.ca_file
    assert status_of(devrev_simulator, devrev_simulator.ca_file) == 200


def test_cli_tls_prints_the_ca_and_serves_https():
    process = subprocess.Popen(
        [sys.executable, "-m", "airflow_provider_devrev.testing", "--tls", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        output = LineReader(process)
        url = output.next().removeprefix("DevRev simulator listening on ")
        ca_line = output.next()
        export = output.next()
        assert url.startswith("https://127.0.0.1:")
        ca_file = ca_line.rsplit(": ", 1)[1]
        assert ca_line.startswith("CA certificate")
        conn = json.loads(shlex.split(export.removeprefix("export "))[0].split("=", 1)[1])
        assert conn["host"] == url
        assert conn["extra"] == {"ca_bundle": ca_file}
        with requests.Session() as http:
            http.trust_env = False
            assert http.get(url + "/dev-users.self", verify=ca_file, timeout=TIMEOUT).status_code == 401
        process.send_signal(signal.SIGTERM)
        assert process.wait(TIMEOUT) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(TIMEOUT)
        for stream in (process.stdout, process.stderr):
            if stream:
                stream.close()
