"""The simulator's rate limit: one window per token, whatever it asks for, and ``devrev-simulator --rate-limit``."""

from __future__ import annotations

import subprocess
import sys

import pytest
import requests

from airflow_provider_devrev.testing import DevRevSimulator
from airflow_provider_devrev.testing.__main__ import _parser
from tests.testing.test_plugin_and_cli import TIMEOUT, LineReader, launch  # noqa: F401 - launch is a fixture

TOKEN = "rate-token-0123456789abcdef"


def get(url: str, token: str, session_id: str) -> requests.Response:
    return requests.get(
        f"{url}/observability.sessions.get",
        params={"platform": "android", "session_id": session_id, "version_key": "v@1"},
        headers={"Authorization": f"Bearer {token}"},
        timeout=TIMEOUT,
    )


def test_every_request_of_a_token_counts_towards_its_window_and_another_token_has_its_own():
    sim = DevRevSimulator(token=TOKEN, seed_data=False, rate_limit=(3, 600)).start()
    try:
        # Three different sessions, two connections: one window.
        answers = [get(sim.url, TOKEN, f"s-{i}") for i in range(3)]
        assert [a.status_code for a in answers] == [404, 404, 404]
        assert [a.headers["X-Ratelimit-Remaining"] for a in answers] == ["2", "1", "0"]
        with requests.Session() as other_connection:
            refused = other_connection.get(
                f"{sim.url}/dev-users.self", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=TIMEOUT
            )
        assert refused.status_code == 429
        assert float(refused.headers["Retry-After"]) > 590
        sim.rotate_token(TOKEN + "-new")
        fresh = get(sim.url, TOKEN + "-new", "s-0")
        assert fresh.status_code == 404
        assert fresh.headers["X-Ratelimit-Remaining"] == "2"
    finally:
        sim.stop()


def test_rate_limit_flag_parses_requests_per_seconds():
    assert _parser().parse_args(["--rate-limit", "100/300"]).rate_limit == (100, 300.0)
    for bad in ("100", "0/5", "5/0", "x/1", "5/inf"):
        with pytest.raises(SystemExit) as caught:
            _parser().parse_args(["--rate-limit", bad])
        assert caught.value.code == 2


def test_the_cli_throttles_a_token_with_rate_limit(launch):  # noqa: F811 - the fixture
    process = subprocess.Popen(
        [sys.executable, "-m", "airflow_provider_devrev.testing", "--empty", "--token", TOKEN, "--rate-limit", "2/600"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    launch.append(process)
    url = LineReader(process).next().removeprefix("DevRev simulator listening on ")
    statuses = [get(url, TOKEN, f"s-{i}").status_code for i in range(3)]
    assert statuses == [404, 404, 429]
