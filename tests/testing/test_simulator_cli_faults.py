"""``devrev-simulator --fault``: the real command line, each fault kind met by a real HTTP request."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from airflow_provider_devrev.testing.data import SEED_ANDROID_SESSION_ID, SEED_VERSION_KEY
from airflow_provider_devrev.testing.faults import FAULT_KINDS
from tests.testing.test_plugin_and_cli import LineReader

TIMEOUT = 20
CLI = [sys.executable, "-m", "airflow_provider_devrev.testing"]
TOKEN = "cli-faults-token-0123456789abcdefghijkl"
HEADERS = {"Authorization": f"Bearer {TOKEN}"}
QUERY = {"session_id": SEED_ANDROID_SESSION_ID, "version_key": SEED_VERSION_KEY, "platform": "android"}


def get_session(url: str, timeout: float = TIMEOUT) -> requests.Response:
    return requests.get(url + "/observability.sessions.get", params=QUERY, headers=HEADERS, timeout=timeout)


def whoami(url: str) -> requests.Response:
    return requests.get(url + "/dev-users.self", headers=HEADERS, timeout=TIMEOUT)


@pytest.fixture
def serve() -> Iterator[Callable[..., tuple[str, list[str]]]]:
    """Start the CLI with some ``--fault``s; returns its URL and the fault lines it printed. Stopped by pid."""
    processes: list[subprocess.Popen[str]] = []

    def start(*faults: str) -> tuple[str, list[str]]:
        args = [arg for fault in faults for arg in ("--fault", fault)]
        process = subprocess.Popen(
            [*CLI, "--token", TOKEN, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        processes.append(process)
        output = LineReader(process)
        first = output.next()
        assert first.startswith("DevRev simulator listening on "), first
        assert output.next().startswith("export AIRFLOW_CONN_DEVREV_DEFAULT=")
        assert output.next().startswith("serving ")
        return first.rsplit(" ", 1)[1], [output.next() for _ in faults]

    yield start
    for process in processes:
        process.terminate()
        try:
            process.wait(TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(TIMEOUT)


def _rate_limit(url: str) -> None:
    answer = get_session(url)
    assert answer.status_code == 429
    assert answer.headers["Retry-After"] == "7"
    assert answer.json() == {
        "type": "too_many_requests",
        "message": "Rate limit exceeded; retry after 7 seconds.",
        "retry_after": 9,
    }


def _server_error(url: str) -> None:
    answer = get_session(url)
    assert (answer.status_code, answer.headers["Content-Type"]) == (502, "text/html")
    assert "<h1>502 Bad Gateway</h1>" in answer.text


def _status(url: str) -> None:
    answer = get_session(url)
    assert answer.status_code == 409
    assert answer.json() == {"type": "conflict", "message": "a, b"}
    assert answer.headers["X-Why"] == "test"


def _slow(url: str) -> None:
    # Held for 60 s: a client that gives up after 1 s sees no answer at all.
    with pytest.raises(requests.ReadTimeout):
        get_session(url, timeout=1)


def _drop(url: str) -> None:
    with pytest.raises(requests.ConnectionError):
        get_session(url)


def _non_json(url: str) -> None:
    answer = get_session(url)
    assert (answer.status_code, answer.headers["Content-Type"], answer.text) == (503, "text/plain", "down, sorry")


def _truncated_json(url: str) -> None:
    answer = get_session(url)
    whole = get_session(url).content
    assert answer.status_code == 200
    # The first half of the normal answer: a complete HTTP response, incomplete JSON.
    assert answer.content == whole[: len(whole) // 2]
    with pytest.raises(json.JSONDecodeError):
        json.loads(answer.content)


def _cut_body(url: str) -> None:
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        get_session(url)


def _revoked(url: str) -> None:
    answer = get_session(url)
    assert answer.status_code == 401
    assert answer.json()["type"] == "token_revoked"


#: For each kind: the ``--fault`` for the next ``sessions.get``, and what a real request meets.
KINDS: dict[str, tuple[str, Callable[[str], None]]] = {
    "rate_limit": ("rate_limit:retry_after=7,body_retry_after=9@sessions.get", _rate_limit),
    "server_error": ("server_error:status=502@sessions.get", _server_error),
    "status": (
        'status:status=409,body={"type":"conflict","message":"a, b"},headers={"X-Why":"test"}@sessions.get',
        _status,
    ),
    "slow": ("slow:delay=60@sessions.get", _slow),
    "drop": ("drop@sessions.get", _drop),
    "non_json": ('non_json:status=503,body="down, sorry",content_type=text/plain@sessions.get', _non_json),
    "truncated_json": ("truncated_json@sessions.get", _truncated_json),
    "cut_body": ("cut_body:after_bytes=10@sessions.get", _cut_body),
    "revoked": ("revoked@sessions.get", _revoked),
}


def test_every_kind_is_tried_here() -> None:
    assert set(KINDS) == FAULT_KINDS


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_each_kind_from_the_shell_meets_the_next_request_to_its_endpoint_then_ends(serve: Any, kind: str) -> None:
    spec, meets = KINDS[kind]
    url, printed = serve(spec)

    [line] = printed
    assert line.startswith(f"fault {kind}")
    assert line.endswith(" on /observability.sessions.get: the next 1 request(s)")
    # Another endpoint is not affected.
    assert whoami(url).status_code == 200
    meets(url)
    # Once: the request after it is answered as normal.
    answer = get_session(url)
    assert answer.status_code == 200
    assert answer.json()["session"]["session_id"] == SEED_ANDROID_SESSION_ID


def test_faults_are_met_in_the_order_given_on_every_endpoint_and_as_many_times_as_asked(serve: Any) -> None:
    url, printed = serve("server_error:status=503*2", "revoked@dev-users.self*always")

    assert printed == [
        "fault server_error (status=503) on every endpoint: the next 2 request(s)",
        "fault revoked on /dev-users.self: every request",
    ]
    assert [whoami(url).status_code, get_session(url).status_code] == [503, 503]
    assert [get_session(url).status_code for _ in range(2)] == [200, 200]
    assert [whoami(url).status_code for _ in range(3)] == [401, 401, 401]


def test_a_bad_fault_stops_it_before_it_listens_with_exit_status_2_naming_the_value() -> None:
    done = subprocess.run(
        [*CLI, "--fault", "drop", "--fault", "rate_limit:retry_after=soon@sessions.get"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.splitlines()[-1] == (
        "devrev-simulator: error: argument --fault: bad --fault 'rate_limit:retry_after=soon@sessions.get': "
        "retry_after must be a number >= 0 and <= 1,000,000,000, not 'soon'"
    )


def test_an_infinite_wait_stops_it_with_exit_status_2_not_a_traceback() -> None:
    # JSON's Infinity: int() of it raised OverflowError, which escaped argparse as a traceback.
    done = subprocess.run(
        [*CLI, "--fault", "rate_limit:retry_after=Infinity"], capture_output=True, text=True, timeout=60, check=False
    )

    assert done.returncode == 2
    assert done.stderr.splitlines()[-1] == (
        "devrev-simulator: error: argument --fault: bad --fault 'rate_limit:retry_after=Infinity': "
        "retry_after must be a number >= 0 and <= 1,000,000,000, not inf"
    )


def test_help_shows_the_syntax_and_every_kind() -> None:
    done = subprocess.run([*CLI, "--help"], capture_output=True, text=True, timeout=60, check=True)

    assert "--fault KIND[:KEY=VALUE,...][@ENDPOINT][*TIMES]" in done.stdout
    for kind in FAULT_KINDS:
        assert f"\n  {kind} " in done.stdout
