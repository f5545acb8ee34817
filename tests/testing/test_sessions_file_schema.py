"""
A ``--sessions`` line is checked against the contract's session schema (the packaged ``openapi.yaml``): a session
missing a required field, or with a value of the wrong type or outside its enum, stops the simulator at start,
naming the line and the field.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given
from hypothesis import strategies as st

from airflow_provider_devrev.testing.contract import openapi_path
from airflow_provider_devrev.testing.data import make_session, seed_sessions
from airflow_provider_devrev.testing.sessions_file import SessionsFileError, parse_sessions
from tests.properties import sized

CONSOLE_SCRIPT = Path(sys.executable).with_name("devrev-simulator")
MODULE = [sys.executable, "-m", "airflow_provider_devrev.testing"]
#: Seconds a simulator given a bad file has to exit; one that starts serving instead is killed after it.
EXIT_TIMEOUT = 30
VERSION_KEY = "com.example.schema@1.0.0"


def generated(kind: str, seed: int = 0, **fields: Any) -> dict[str, Any]:
    return make_session(random.Random(seed), kind, session_id=f"{kind}-{seed}", **fields)


def without(session: dict[str, Any], *path: str) -> dict[str, Any]:
    """A copy of ``session`` without the field at ``path`` (``("device_metadata", "model")``)."""
    copy = json.loads(json.dumps(session))
    parent = copy
    for part in path[:-1]:
        parent = parent[part]
    del parent[path[-1]]
    return copy


def with_value(session: dict[str, Any], value: Any, *path: str) -> dict[str, Any]:
    copy = json.loads(json.dumps(session))
    parent = copy
    for part in path[:-1]:
        parent = parent[part]
    parent[path[-1]] = value
    return copy


def line(session: dict[str, Any], version_key: str = VERSION_KEY) -> str:
    return json.dumps({"version_key": version_key, "session": session})


MOBILE = generated("mobile")
WEB = generated("web")

BAD_LINES = {
    "missing is_crash": (without(MOBILE, "is_crash"), "'session' is missing the required field 'is_crash'"),
    "missing device_metadata": (
        without(MOBILE, "device_metadata"),
        "'session' is missing the required field 'device_metadata'",
    ),
    "missing a nested field": (
        without(MOBILE, "device_metadata", "screen_width"),
        "'session.device_metadata' is missing the required field 'screen_width'",
    ),
    "wrong type": (
        with_value(MOBILE, "1920", "device_metadata", "screen_height"),
        "'session.device_metadata.screen_height' must be of type integer, got '1920'",
    ),
    "a boolean as a number": (
        with_value(WEB, True, "rage_click_count"),
        "'session.rage_click_count' must be of type integer, got True",
    ),
    "bad enum": (
        with_value(WEB, "laptop", "device_metadata", "type"),
        "'session.device_metadata.type' must be one of ['desktop', 'mobile'], got 'laptop'",
    ),
    "wrong item type": (with_value(MOBILE, [7], "recording_ids"), "'session.recording_ids.0' must be of type string"),
}


def run_until_exit(command: list[str]) -> subprocess.CompletedProcess[str]:
    """Run ``command``; fail (after killing it) if it is still running after :data:`EXIT_TIMEOUT`."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        stdout, stderr = process.communicate(timeout=EXIT_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        stdout, stderr = process.communicate()
        pytest.fail(f"the simulator kept running with a bad sessions file: {stdout[:500]}")
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


@pytest.mark.parametrize(("session", "problem"), list(BAD_LINES.values()), ids=list(BAD_LINES))
def test_the_cli_stops_at_start_naming_the_line_and_the_field(session, problem, tmp_path: Path) -> None:
    sessions_file = tmp_path / "sessions.jsonl"
    sessions_file.write_text("\n".join([line(generated("mobile", 1)), "# a comment", line(session), line(WEB)]))

    result = run_until_exit([*MODULE, "--sessions", str(sessions_file)])

    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith(f"devrev-simulator: error: line 3: {problem}"), result.stderr


def test_the_console_script_stops_too_and_so_does_list(tmp_path: Path) -> None:
    session, problem = BAD_LINES["missing is_crash"]
    sessions_file = tmp_path / "sessions.jsonl"
    sessions_file.write_text(line(session) + "\n")
    for command in ([str(CONSOLE_SCRIPT)], [*MODULE, "--list"]):
        result = run_until_exit([*command, "--sessions", str(sessions_file)])
        assert (result.returncode, result.stdout) == (2, "")
        assert result.stderr.strip() == f"devrev-simulator: error: line 1: {problem}"


# -- properties: the simulator's own sessions pass, and each required field is required ----------------------


def required_paths() -> dict[str, list[tuple[str, ...]]]:
    """Every required field of each session type, nested objects' included, read from the packaged contract."""
    schemas = yaml.safe_load(openapi_path().read_text(encoding="utf-8"))["components"]["schemas"]

    def walk(schema: dict[str, Any], prefix: tuple[str, ...]) -> list[tuple[str, ...]]:
        found = [(*prefix, name) for name in schema.get("required", [])]
        for name, field in schema.get("properties", {}).items():
            ref = field.get("$ref", "")
            if ref:
                found += walk(schemas[ref.rsplit("/", 1)[1]], (*prefix, name))
        return found

    common = [(name,) for name in schemas["observability-session"]["required"]]
    return {kind: common + walk(schemas[f"{kind}-session"], ()) for kind in ("mobile", "web")}


REQUIRED = required_paths()
KINDS = st.sampled_from([("mobile", "android"), ("mobile", "ios"), ("web", None)])


def test_the_contract_requires_what_the_issue_named() -> None:
    assert {("is_crash",), ("device_metadata",), ("device_metadata", "screen_width")} <= set(REQUIRED["mobile"])
    assert {("device_metadata", "type"), ("rage_click_count",)} <= set(REQUIRED["web"])


@pytest.mark.property
@sized(40, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), kinds=st.lists(KINDS, min_size=1, max_size=5))
def test_every_session_the_simulator_generates_passes(seed: int, kinds: list[tuple[str, str | None]]) -> None:
    rng = random.Random(f"more-{seed}")
    sessions = [session for _, session in seed_sessions(seed)]
    sessions += [make_session(rng, kind, platform=platform) for kind, platform in kinds]
    # A version key each: the file refuses the same id twice under one key, and ids may repeat across seeds.
    text = "\n".join(line(session, f"com.example.n{number}@1") for number, session in enumerate(sessions))
    assert [entry.session for entry in parse_sessions(text)] == sessions


@pytest.mark.property
@sized(80)
@given(seed=st.integers(0, 2**32 - 1), kind=KINDS, data=st.data())
def test_a_generated_session_missing_any_required_field_is_refused_naming_it(
    seed: int, kind: tuple[str, str | None], data: st.DataObject
) -> None:
    session = make_session(random.Random(seed), kind[0], platform=kind[1])
    path = data.draw(st.sampled_from([p for p in REQUIRED[kind[0]] if _present(session, p)]), label="field")
    with pytest.raises(SessionsFileError) as raised:
        parse_sessions(line(without(session, *path)))
    message = str(raised.value)
    assert message.startswith("line 1: ")
    assert repr(path[-1]) in message
    if len(path) > 1:
        assert repr(".".join(("session", *path[:-1]))) in message


def _present(session: dict[str, Any], path: tuple[str, ...]) -> bool:
    # A required field of an optional object (network_metadata's status_counts) is required only when the
    # object is there.
    value: Any = session
    for part in path:
        if not isinstance(value, dict) or part not in value:
            return False
        value = value[part]
    return True


def test_a_line_separator_inside_a_string_is_part_of_the_line():
    """json.dumps(..., ensure_ascii=False) writes U+2028/U+2029 raw: a line ends at a newline only."""
    titled = with_value(MOBILE, "crash\u2028in\u2029checkout", "device_metadata", "model")
    bad = without(generated("mobile", seed=1), "is_crash")
    text = "\n".join(
        json.dumps({"version_key": VERSION_KEY, "session": session}, ensure_ascii=False) for session in (titled, bad)
    )

    with pytest.raises(SessionsFileError, match=r"^line 2: 'session' is missing the required field 'is_crash'"):
        parse_sessions(text)
    (entry,) = parse_sessions(text.split("\n")[0])
    assert entry.session["device_metadata"]["model"] == "crash\u2028in\u2029checkout"
