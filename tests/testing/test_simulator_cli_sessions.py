"""``devrev-simulator --sessions FILE`` and ``--list``: the real command line, queried over HTTP."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import requests
import yaml
from openapi_schema_validator import OAS30Validator, oas30_format_checker

from airflow_provider_devrev.testing.contract import openapi_path
from airflow_provider_devrev.testing.data import (
    SEED_ANDROID_SESSION_ID,
    SEED_IOS_SESSION_ID,
    SEED_VERSION_KEY,
    SEED_WEB_SESSION_ID,
    make_session,
    seed_sessions,
)
from airflow_provider_devrev.testing.session_table import COLUMNS
from airflow_provider_devrev.testing.sessions_file import SessionsFileError, parse_sessions, read_sessions_file
from tests.testing.test_plugin_and_cli import LineReader

if TYPE_CHECKING:
    from collections.abc import Iterator

TIMEOUT = 20
SAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "sessions.jsonl"
CLI = [sys.executable, "-m", "airflow_provider_devrev.testing"]
TOKEN = "cli-sessions-token-0123456789abcdefghij"
HEADERS = {"Authorization": f"Bearer {TOKEN}"}
LATE_KEY = "com.example.late@1.0.0"


def line(session: dict[str, Any], version_key: str = LATE_KEY, **extra: Any) -> str:
    return json.dumps({"version_key": version_key, "session": session, **extra})


def session(session_id: str, **overrides: Any) -> dict[str, Any]:
    import random

    return make_session(random.Random(session_id), "mobile", session_id=session_id, **overrides)


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def get(url: str, session_id: str, version_key: str, platform: str = "android") -> requests.Response:
    return requests.get(
        url + "/observability.sessions.get",
        params={"session_id": session_id, "version_key": version_key, "platform": platform},
        headers=HEADERS,
        timeout=TIMEOUT,
    )


def listed_ids(url: str, version_key: str, platform: str = "android") -> list[str]:
    response = requests.get(
        url + "/observability.sessions.list",
        params={"version_key": version_key, "platform": platform, "limit": 100},
        headers=HEADERS,
        timeout=TIMEOUT,
    )
    response.raise_for_status()
    return [s["session_id"] for s in response.json()["sessions"]]


@pytest.fixture
def serve() -> Iterator[Any]:
    """Start the CLI as a subprocess; yields a function returning its URL and the line saying what it serves.

    Each process is stopped by its pid at the end.
    """
    processes: list[subprocess.Popen[str]] = []

    def start(*args: str) -> tuple[str, str]:
        process = subprocess.Popen(
            [*CLI, "--token", TOKEN, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        processes.append(process)
        output = LineReader(process)
        first = output.next()
        assert first.startswith("DevRev simulator listening on "), first
        assert output.next().startswith("export AIRFLOW_CONN_DEVREV_DEFAULT=")
        return first.rsplit(" ", 1)[1], output.next()

    yield start
    for process in processes:
        process.terminate()
        try:
            process.wait(TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(TIMEOUT)


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=60, check=False)


# -- the file format (pure) ---------------------------------------------------------------------------


def test_parse_reads_every_option_and_skips_blank_and_comment_lines() -> None:
    text = "\n".join(
        [
            "# my sessions",
            line(session("a")),
            "",
            line(session("b"), visible_after_requests=3),
            line(session("c"), visible_at="2030-01-01T09:00:00Z"),
            line(session("d"), visible_at="2030-01-01T09:00:00"),
            line(session("e"), visible_at="2030-01-01T10:00:00+01:00"),
        ]
    )
    entries = parse_sessions(text)
    assert [(e.line, e.session["session_id"]) for e in entries] == [(2, "a"), (4, "b"), (5, "c"), (6, "d"), (7, "e")]
    assert entries[0].visible_after_requests is None
    assert entries[0].visible_at is None
    assert entries[1].visible_after_requests == 3
    nine_utc = datetime(2030, 1, 1, 9, tzinfo=UTC)
    assert [e.visible_at for e in entries[2:]] == [nine_utc, nine_utc, nine_utc]


@pytest.mark.parametrize(
    ("bad_line", "problem"),
    [
        ('{"version_key": "v", "session": ', "not valid JSON"),
        ("[1, 2]", "expected a JSON object, got list"),
        (line(session("a"), visible_after_request=2), "unknown key 'visible_after_request'"),
        (json.dumps({"session": session("a")}), "'version_key' must be a non-empty string, got None"),
        (line(session("a"), version_key=""), "'version_key' must be a non-empty string"),
        (json.dumps({"version_key": "v", "session": "a"}), "'session' must be a JSON object"),
        (line({**session("a"), "type": "desktop"}), "'session': session 'type' must be 'mobile' or 'web'"),
        (line({k: v for k, v in session("a").items() if k != "session_id"}), "non-empty string 'session_id'"),
        (line({**session("a"), "created_at": "yesterday"}), "Invalid isoformat string: 'yesterday'"),
        (line({**session("a"), "platform": "web"}), "a mobile session needs 'platform' in ['android', 'ios']"),
        (line(session("a"), visible_after_requests=0), "'visible_after_requests' must be an integer >= 1, got 0"),
        (line(session("a"), visible_after_requests=True), "'visible_after_requests' must be an integer >= 1"),
        (line(session("a"), visible_after_requests="3"), "'visible_after_requests' must be an integer >= 1, got '3'"),
        (line(session("a"), visible_at="tomorrow"), "'visible_at' is not an ISO-8601 time: 'tomorrow'"),
        (line(session("a"), visible_at=1767225600), "'visible_at' must be an ISO-8601 time string"),
        (
            line(session("a"), visible_at="2030-01-01T00:00:00Z", visible_after_requests=2),
            "give 'visible_after_requests' or 'visible_at', not both",
        ),
    ],
)
def test_a_bad_line_is_named_with_its_problem(bad_line: str, problem: str) -> None:
    text = "\n".join(["# header", line(session("good")), bad_line, line(session("never-read"))])
    with pytest.raises(SessionsFileError) as raised:
        parse_sessions(text)
    message = str(raised.value)
    assert message.startswith("line 3: ")
    assert problem in message


def test_the_same_session_twice_names_both_lines() -> None:
    text = "\n".join([line(session("a")), line(session("b")), line(session("a"), visible_after_requests=2)])
    with pytest.raises(SessionsFileError, match=r"^line 3: session 'a' under version key .* is already on line 1$"):
        parse_sessions(text)


def test_the_same_id_under_two_version_keys_is_two_sessions() -> None:
    text = "\n".join([line(session("a")), line(session("a"), version_key="other@1")])
    assert [e.version_key for e in parse_sessions(text)] == [LATE_KEY, "other@1"]


def test_an_unreadable_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(SessionsFileError, match=r"cannot read sessions file .*missing\.jsonl"):
        read_sessions_file(tmp_path / "missing.jsonl")
    latin1 = tmp_path / "latin1.jsonl"
    latin1.write_bytes('{"version_key": "caf\xe9"}'.encode("latin-1"))
    with pytest.raises(SessionsFileError, match="cannot read sessions file"):
        read_sessions_file(latin1)


# -- the documented sample file -------------------------------------------------------------------------


def test_the_sample_file_loads_and_its_sessions_are_contract_valid() -> None:
    entries = read_sessions_file(SAMPLE)
    assert len(entries) >= 4
    spec = yaml.safe_load(openapi_path().read_text(encoding="utf-8"))
    validator = OAS30Validator(
        {"$ref": "#/components/schemas/observability-session", "components": spec["components"]},
        format_checker=oas30_format_checker,
    )
    for entry in entries:
        errors = [error.message for error in validator.iter_errors(entry.session)]
        assert errors == [], f"line {entry.line}: {errors}"
    # It shows both ways of appearing later, and every kind of session.
    assert any(e.visible_after_requests for e in entries)
    assert any(e.visible_at for e in entries)
    assert {(e.session["type"], e.session.get("platform")) for e in entries} >= {
        ("mobile", "android"),
        ("mobile", "ios"),
        ("web", "web"),
    }


# -- the command line ------------------------------------------------------------------------------------


def test_cli_serves_the_sample_file_over_http(serve: Any) -> None:
    entries = read_sessions_file(SAMPLE)
    url, summary = serve("--sessions", str(SAMPLE))
    now_visible = [e for e in entries if not e.visible_after_requests and not e.visible_at]
    assert now_visible
    for entry in now_visible:
        response = get(url, entry.session["session_id"], entry.version_key, entry.session["platform"])
        assert response.status_code == 200, response.text
        assert response.json()["session"] == entry.session
    # The seeded data set is still there.
    assert get(url, SEED_ANDROID_SESSION_ID, SEED_VERSION_KEY).status_code == 200
    later = len(entries) - len(now_visible)
    assert summary.endswith(
        f"{len(entries)} came from --sessions, {later} of them appearing later (--list shows them all)"
    )


def test_cli_session_appears_at_the_nth_lookup_and_at_its_time(serve: Any, tmp_path: Path) -> None:
    now = datetime.now(UTC)
    sessions_file = tmp_path / "sessions.jsonl"
    sessions_file.write_text(
        "\n".join(
            [
                line(session("late-0001"), visible_after_requests=3),
                line(session("past-0001"), visible_at=iso(now - timedelta(hours=1))),
                line(session("future-0001"), visible_at=iso(now + timedelta(days=1))),
                line(session("now-0001")),
            ]
        )
        + "\n"
    )
    url, summary = serve("--sessions", str(sessions_file), "--empty")
    assert summary.startswith("serving 2 sessions now; 4 came from --sessions, 2 of them appearing later")
    # Not yet uploaded: missing from lists, and the first two lookups answer 404 as DevRev does.
    assert sorted(listed_ids(url, LATE_KEY)) == ["now-0001", "past-0001"]
    assert [get(url, "late-0001", LATE_KEY).status_code for _ in range(3)] == [404, 404, 200]
    assert sorted(listed_ids(url, LATE_KEY)) == ["late-0001", "now-0001", "past-0001"]
    assert get(url, "future-0001", LATE_KEY).status_code == 404
    assert get(url, "past-0001", LATE_KEY).status_code == 200


def test_cli_fails_on_a_bad_line_before_listening(tmp_path: Path) -> None:
    sessions_file = tmp_path / "sessions.jsonl"
    sessions_file.write_text(line(session("a")) + "\n" + line(session("b"), visible_after_requests=-1) + "\n")
    for extra in ([], ["--list"]):
        result = run_cli("--sessions", str(sessions_file), *extra)
        assert result.returncode == 2
        assert result.stdout == ""
        assert result.stderr.strip() == (
            "devrev-simulator: error: line 2: 'visible_after_requests' must be an integer >= 1, got -1"
        )


def test_cli_names_a_missing_sessions_file(tmp_path: Path) -> None:
    result = run_cli("--sessions", str(tmp_path / "nope.jsonl"))
    assert result.returncode == 2
    assert "cannot read sessions file" in result.stderr
    assert "nope.jsonl" in result.stderr
    assert result.stdout == ""


def table_rows(stdout: str) -> list[dict[str, str]]:
    lines = stdout.splitlines()
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    assert tuple(header) == COLUMNS
    assert set(lines[1]) == {"|", "-"}
    rows = []
    for text in lines[2:]:
        if not text.startswith("|"):
            break
        rows.append(dict(zip(header, (cell.strip() for cell in text.strip("|").split("|")), strict=True)))
    return rows


def test_cli_list_prints_seeded_and_file_sessions_and_exits() -> None:
    result = run_cli("--sessions", str(SAMPLE), "--list")
    assert result.returncode == 0, result.stderr
    assert "listening" not in result.stdout
    rows = table_rows(result.stdout)
    seeded = seed_sessions(0)
    entries = read_sessions_file(SAMPLE)
    assert len(rows) == len(seeded) + len(entries)
    assert result.stdout.splitlines()[-1] == f"{len(rows)} sessions ({len(seeded)} seeded, the rest from --sessions)"
    by_id = {row["session_id"]: row for row in rows}
    assert by_id[SEED_ANDROID_SESSION_ID] == {
        "session_id": SEED_ANDROID_SESSION_ID,
        "type/platform": "mobile/android",
        "version_key": SEED_VERSION_KEY,
        "created_at": "2025-06-02T07:00:00.000Z",
        "crash/ANR": "crash",
        "visible": "from start",
        "source": "seed",
    }
    assert by_id[SEED_IOS_SESSION_ID]["crash/ANR"] == "no"
    assert by_id[SEED_WEB_SESSION_ID]["crash/ANR"] == "-"
    for entry in entries:
        row = by_id[entry.session["session_id"]]
        assert row["source"] == f"line {entry.line}"
        assert row["version_key"] == entry.version_key
        if entry.visible_after_requests:
            assert row["visible"] == f"from lookup {entry.visible_after_requests}"
        elif entry.visible_at:
            assert row["visible"] == "from " + entry.visible_at.strftime("%Y-%m-%dT%H:%M:%S.000Z")
        else:
            assert row["visible"] == "from start"
    # Ordered by version key, then created_at.
    keys = [(row["version_key"], row["created_at"]) for row in rows]
    assert keys == sorted(keys)


def test_cli_list_with_empty_shows_only_the_file_and_a_line_replaces_a_seeded_session(tmp_path: Path) -> None:
    replaced = next(s for key, s in seed_sessions(0) if s["session_id"] == SEED_IOS_SESSION_ID)
    sessions_file = tmp_path / "sessions.jsonl"
    sessions_file.write_text(
        line({**replaced, "is_crash": True}, version_key=SEED_VERSION_KEY, visible_after_requests=2) + "\n"
    )
    empty = table_rows(run_cli("--sessions", str(sessions_file), "--list", "--empty").stdout)
    assert [(r["session_id"], r["crash/ANR"], r["visible"]) for r in empty] == [
        (SEED_IOS_SESSION_ID, "crash", "from lookup 2")
    ]
    rows = table_rows(run_cli("--sessions", str(sessions_file), "--list").stdout)
    assert len(rows) == len(seed_sessions(0))
    assert [r["source"] for r in rows if r["session_id"] == SEED_IOS_SESSION_ID] == ["line 1"]
