"""End to end: a rerun that would shrink the crash export, and the late sweep example, run by real Airflow."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.e2e.airflow_helpers import load_dag, task_states, xcom

pytestmark = pytest.mark.e2e

VERSION_KEY = "com.acme.shop@5.2.0"
DAY = datetime(2026, 2, 1, tzinfo=UTC)


@pytest.fixture
def sim(devrev_simulator, airflow_db, monkeypatch, tmp_path):
    # Read by the DAG files when they are parsed, which load_dag() does after this.
    monkeypatch.setenv("DEVREV_EXPORT_BASE", (tmp_path / "exports").as_uri())
    return devrev_simulator


def add(sim, session_id, moment, *, platform="android"):
    session = sim.make_session("mobile", platform=platform, session_id=session_id, created_at=moment, is_crash=True)
    return sim.add_session(session, version_key=VERSION_KEY)


def run_at(dag, midnight: datetime):
    """The run at ``midnight``: its data interval is the day before, as the scheduler would make it."""
    try:
        return dag.test(logical_date=midnight)
    except TypeError:  # Airflow 2.11
        return dag.test(execution_date=midnight)


def path(tmp_path: Path, name: str, platform: str = "android") -> Path:
    return tmp_path / "exports" / f"{DAY:%Y-%m-%d}" / f"{platform}-crash-sessions{name}.jsonl"


def ids(file: Path) -> list[str]:
    return [json.loads(line)["session_id"] for line in file.read_text(encoding="utf-8").splitlines()]


def test_a_rerun_after_retention_fails_naming_both_counts_and_keeps_the_file(sim, tmp_path, capsys, caplog):
    for number in range(5):
        add(sim, f"crash-{number}", DAY + timedelta(hours=number))
    dag = load_dag("example_devrev_crash_export")
    first = run_at(dag, DAY + timedelta(days=1))
    assert str(first.state) == "success", task_states(first)
    before = path(tmp_path, "").read_bytes()
    for number in range(5):
        sim.remove_session(f"crash-{number}")

    rerun = run_at(dag, DAY + timedelta(days=1))

    assert task_states(rerun)["export_android_crashes"] == "failed"
    assert path(tmp_path, "").read_bytes() == before
    logged = " ".join((capsys.readouterr().out + caplog.text).split())
    assert "found 0 sessions where" in logged
    assert "holds 5" in logged
    assert "allow_shrink=True" in logged
    assert sorted(p.name for p in path(tmp_path, "").parent.iterdir()) == [
        "android-crash-sessions.jsonl",
        "ios-crash-sessions.jsonl",
    ]


def test_the_sweep_writes_exactly_the_late_uploads_and_a_second_sweep_only_newer_ones(sim, tmp_path):
    on_time = [add(sim, f"on-time-{n}", DAY + timedelta(hours=3 * n))["session_id"] for n in range(4)]
    add(sim, "ios-on-time", DAY + timedelta(hours=5), platform="ios")
    export = load_dag("example_devrev_crash_export")
    assert str(run_at(export, DAY + timedelta(days=1)).state) == "success"
    # Uploaded after the export listed (past settle): in no file until a sweep.
    late = [add(sim, f"late-{n}", DAY + timedelta(hours=23, minutes=n))["session_id"] for n in range(3)]
    add(sim, "other-day", DAY + timedelta(days=1, hours=1))
    sweep = load_dag("example_devrev_late_sweep")

    first = run_at(sweep, DAY + timedelta(days=2))  # sweeps the day before yesterday: DAY

    assert str(first.state) == "success", task_states(first)
    assert ids(path(tmp_path, "")) == on_time
    assert ids(path(tmp_path, ".late-1")) == late
    assert xcom(first, "sweep_android_crashes") == {"path": path(tmp_path, ".late-1").as_uri(), "count": 3}
    assert xcom(first, "sweep_ios_crashes") == {"path": None, "count": 0}

    second = run_at(sweep, DAY + timedelta(days=2))
    assert str(second.state) == "success", task_states(second)
    assert xcom(second, "sweep_android_crashes") == {"path": None, "count": 0}

    newest = add(sim, "later-still", DAY + timedelta(minutes=30))["session_id"]
    third = run_at(sweep, DAY + timedelta(days=2))
    assert str(third.state) == "success", task_states(third)
    assert ids(path(tmp_path, ".late-2")) == [newest]
    assert sorted(p.name for p in path(tmp_path, "").parent.iterdir()) == [
        "android-crash-sessions.jsonl",
        "android-crash-sessions.late-1.jsonl",
        "android-crash-sessions.late-2.jsonl",
        "ios-crash-sessions.jsonl",
    ]

    # A rerun of the export afterwards keeps each session in the one file it is in.
    assert str(run_at(export, DAY + timedelta(days=1)).state) == "success"
    files = [path(tmp_path, name) for name in ("", ".late-1", ".late-2")]
    everywhere = [session_id for file in files for session_id in ids(file)]
    assert sorted(everywhere) == sorted([*on_time, *late, newest])
