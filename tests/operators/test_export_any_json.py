"""
Any JSON DevRev can send is written (issue 28): strings holding lone surrogates (sent as the escape ``\\ud83d``),
non-BMP and control characters, in keys and values, go through the simulator over HTTP and the real operators,
and the file read back equals what ``json.loads`` gave from DevRev's body.
"""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import strategies as st

from airflow_provider_devrev.operators.devrev import GetSessionsOperator, ListSessionsOperator
from tests.properties import sized

DAY = datetime(2026, 3, 1, tzinfo=UTC)
BOUNDS = {"created_after": DAY.isoformat(), "created_before": (DAY + timedelta(days=1)).isoformat()}

pytestmark = pytest.mark.devrev_simulator(seed_data=False, page_size=3)

#: Any code point: Hypothesis leaves surrogates out of text unless asked, and they are the point here.
CHARACTERS = st.one_of(
    st.characters(),
    st.integers(0xD800, 0xDFFF).map(chr),
    st.sampled_from(
        ["\x00", "\n", "\r", "\x1f", "\x7f", "\x85", '"', "\\", "\u2028", "\u2029", "\U0001f600", "\U0010ffff"]
    ),
)
TEXT = st.lists(CHARACTERS, max_size=12).map("".join)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=8,
)
#: One version key per example: the simulator is shared by all of a test's examples.
NUMBERS = itertools.count()


def as_devrev_sends_it(session: dict[str, Any]) -> Any:
    # The standard library's own escaping (ensure_ascii) and parsing: what a client of DevRev gets.
    return json.loads(json.dumps(session))


def lines(path) -> list[Any]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def add_sessions(sim, fields: list[tuple[str, Any, dict[str, Any]]]) -> tuple[str, list[dict[str, Any]]]:
    version = f"com.example.app@{next(NUMBERS)}.0.0"
    added = []
    for number, (title, extra, metadata) in enumerate(fields):
        session = sim.make_session(
            "mobile",
            session_id=f"s-{number:03d}",
            created_at=DAY + timedelta(minutes=number),
            device_metadata={"model": title, **metadata},
        )
        session["title"] = title
        session["extra"] = extra
        added.append(sim.add_session(session, version_key=version))
    return version, added


FIELDS = st.lists(st.tuples(TEXT, JSON, st.dictionaries(TEXT, TEXT, max_size=2)), min_size=1, max_size=5)


@pytest.mark.property
@sized(200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(fields=FIELDS)
def test_sessions_holding_any_strings_are_exported_and_read_back_equal(devrev_simulator, tmp_path, fields):
    version, added = add_sessions(devrev_simulator, fields)
    expected = [as_devrev_sends_it(session) for session in added]
    target = tmp_path / f"{version.partition('@')[2]}.jsonl"

    listed = ListSessionsOperator(task_id="xcom", platform="android", version_key=version, **BOUNDS)
    exported = ListSessionsOperator(
        task_id="file", platform="android", version_key=version, output_path=str(target), **BOUNDS
    )

    assert listed.execute({}) == expected  # the XCom path: what the hook parsed
    assert exported.execute({}) == {"path": target.as_uri(), "count": len(expected)}
    assert lines(target) == expected
    target.read_bytes().decode("utf-8")  # strict UTF-8: a reader in any language can open it


@pytest.mark.property
@sized(100, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(fields=FIELDS)
def test_get_sessions_writes_and_returns_them_too(devrev_simulator, tmp_path, fields):
    version, added = add_sessions(devrev_simulator, fields)
    expected = [as_devrev_sends_it(session) for session in added]
    ids = [session["session_id"] for session in added]
    target = tmp_path / f"{version.partition('@')[2]}.jsonl"

    fetched = GetSessionsOperator(task_id="xcom", platform="android", version_key=version, session_ids=ids)
    written = GetSessionsOperator(
        task_id="file", platform="android", version_key=version, session_ids=ids, output_path=str(target)
    )

    assert fetched.execute({}) == expected
    assert written.execute({})["count"] == len(expected)
    assert lines(target) == expected


def test_a_title_cut_mid_emoji_is_written_as_the_escape_it_came_as(devrev_simulator, tmp_path):
    """The file stays readable: only the lone surrogate is escaped, other characters are written as they are."""
    version, _ = add_sessions(devrev_simulator, [("Café 😀 \ud83d", {}, {})])
    target = tmp_path / "day.jsonl"

    ListSessionsOperator(
        task_id="file", platform="android", version_key=version, output_path=str(target), **BOUNDS
    ).execute({})

    text = target.read_text(encoding="utf-8")
    assert '"title":"Café 😀 \\ud83d"' in text
    assert lines(target)[0]["title"] == "Café 😀 \ud83d"
