"""The ``devrev_simulator`` pytest fixture and the ``devrev-simulator`` command line."""

from __future__ import annotations

import json
import os
import queue
import shlex
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import requests

from airflow_provider_devrev.testing import DEFAULT_TOKEN, DevRevSimulator
from airflow_provider_devrev.testing.__main__ import main

if TYPE_CHECKING:
    from collections.abc import Iterator

TIMEOUT = 20
CONSOLE_SCRIPT = Path(sys.executable).with_name("devrev-simulator")


# -- the fixture -------------------------------------------------------------------------------------


def test_fixture_runs_a_simulator_and_sets_the_connection(devrev_simulator: DevRevSimulator) -> None:
    assert isinstance(devrev_simulator, DevRevSimulator)
    assert devrev_simulator.running
    assert os.environ["AIRFLOW_CONN_DEVREV_DEFAULT"] == devrev_simulator.connection_json()
    conn = json.loads(os.environ["AIRFLOW_CONN_DEVREV_DEFAULT"])
    response = requests.get(
        conn["host"] + "/dev-users.self",
        headers={"Authorization": f"Bearer {conn['password']}"},
        timeout=TIMEOUT,
    )
    assert response.json()["dev_user"]["id"] == "DEVU-1"


@pytest.mark.devrev_simulator(seed_data=False, page_size=3, token="marker-token-0123456789abcdefghijkl")
def test_fixture_takes_marker_arguments(devrev_simulator: DevRevSimulator) -> None:
    assert devrev_simulator.sessions == []
    assert devrev_simulator.seed_version_keys == []
    assert devrev_simulator.token == "marker-token-0123456789abcdefghijkl"


def test_fixture_stops_and_restores_environment(tmp_path: Path) -> None:
    """Run an inner pytest session: the fixture's simulator is gone and the variable unset afterwards."""
    inner = tmp_path / "test_inner.py"
    inner.write_text(
        textwrap.dedent(
            """
            import os
            import pytest
            import requests

            seen = {}

            def test_uses_fixture(devrev_simulator):
                seen["url"] = devrev_simulator.url
                assert os.environ["AIRFLOW_CONN_DEVREV_DEFAULT"] == devrev_simulator.connection_json()

            @pytest.mark.devrev_simulator(page_size=1)
            def test_marker_is_registered(devrev_simulator):
                assert devrev_simulator.url != seen["url"]

            def test_after():
                assert "AIRFLOW_CONN_DEVREV_DEFAULT" not in os.environ
                with pytest.raises(requests.ConnectionError):
                    requests.get(seen["url"] + "/dev-users.self", timeout=5)
            """
        )
    )
    env = {k: v for k, v in os.environ.items() if k != "AIRFLOW_CONN_DEVREV_DEFAULT"}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", str(inner), "-q", "-p", "no:cacheprovider", "--strict-markers"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 passed" in result.stdout


def test_plugin_import_is_cheap() -> None:
    """pytest imports the plugin in every run of every user: it must not pull in Airflow or a server."""
    probe = textwrap.dedent(
        """
        import json, sys
        import airflow_provider_devrev.testing.pytest_plugin
        import airflow_provider_devrev.testing
        heavy = sorted(m for m in sys.modules if m.split(".")[0] == "airflow" or m == "http.server")
        before = "airflow_provider_devrev.testing.simulator" in sys.modules
        from airflow_provider_devrev.testing import DevRevSimulator
        after = "http.server" in sys.modules
        print(json.dumps({"heavy": heavy, "simulator_before": before, "http_after": after}))
        """
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    assert json.loads(result.stdout) == {"heavy": [], "simulator_before": False, "http_after": True}


def test_simulator_modules_never_import_airflow() -> None:
    probe = textwrap.dedent(
        """
        import json, sys
        from airflow_provider_devrev.testing import simulator, faults, data, store, api, filters, transport, tls
        import airflow_provider_devrev.testing.__main__
        print(json.dumps(sorted(m for m in sys.modules if m == "airflow" or m.startswith("airflow."))))
        """
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    assert json.loads(result.stdout) == []


# -- the command line --------------------------------------------------------------------------------


class LineReader:
    """Lines of a process's stdout with a timeout, failing instead of hanging when nothing comes."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.lines: queue.Queue[str] = queue.Queue()
        stream = process.stdout
        assert stream is not None

        def pump() -> None:
            for line in stream:
                self.lines.put(line)

        threading.Thread(target=pump, daemon=True).start()

    def next(self) -> str:
        try:
            return self.lines.get(timeout=TIMEOUT).rstrip("\n")
        except queue.Empty:
            pytest.fail("the simulator printed nothing in time")


@pytest.fixture
def launch() -> Iterator[list[subprocess.Popen[str]]]:
    processes: list[subprocess.Popen[str]] = []
    yield processes
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.wait(TIMEOUT)


@pytest.mark.parametrize(
    ("command", "stop_signal"),
    [
        ([sys.executable, "-m", "airflow_provider_devrev.testing"], signal.SIGTERM),
        ([sys.executable, "-m", "airflow_provider_devrev.testing"], signal.SIGINT),
        ([str(CONSOLE_SCRIPT)], signal.SIGTERM),
    ],
    ids=["module-SIGTERM", "module-SIGINT", "console-script-SIGTERM"],
)
def test_cli_serves_until_signal(
    command: list[str], stop_signal: signal.Signals, launch: list[subprocess.Popen[str]]
) -> None:
    token = "cli-token-0123456789abcdefghijklmnop"
    process = subprocess.Popen(
        [*command, "--host", "127.0.0.1", "--port", "0", "--token", token, "--seed", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    launch.append(process)
    output = LineReader(process)
    first = output.next()
    prefix = "DevRev simulator listening on "
    assert first.startswith(prefix)
    url = first[len(prefix) :]
    assert url.startswith("http://127.0.0.1:")
    second = output.next()
    assert second.startswith("export AIRFLOW_CONN_DEVREV_DEFAULT='")
    name, value = shlex.split(second.removeprefix("export "))[0].split("=", 1)
    assert name == "AIRFLOW_CONN_DEVREV_DEFAULT"
    assert json.loads(value) == {"conn_type": "devrev", "host": url, "password": token, "extra": {}}

    response = requests.get(url + "/dev-users.self", headers={"Authorization": f"Bearer {token}"}, timeout=TIMEOUT)
    assert response.status_code == 200
    process.send_signal(stop_signal)
    assert process.wait(TIMEOUT) == 0
    assert process.stderr is not None
    assert token not in process.stderr.read()


@pytest.mark.parametrize("host", ["0.0.0.0", "10.1.2.3", "::", "example.com"])
def test_cli_refuses_non_loopback_host(host: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "airflow_provider_devrev.testing", "--host", host],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert "loopback" in result.stderr
    assert result.stdout == ""


def test_cli_reports_a_busy_port(capsys: pytest.CaptureFixture[str]) -> None:
    with DevRevSimulator() as busy:
        assert main(["--port", str(busy.port)]) == 2
    assert "error" in capsys.readouterr().err


def test_cli_main_rejects_non_loopback_in_process(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--host", "192.0.2.1", "--token", DEFAULT_TOKEN])
    assert exit_info.value.code == 2
    assert "loopback" in capsys.readouterr().err
