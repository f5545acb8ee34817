"""End to end: the daily crash export example, run by real Airflow (dag.test) against the simulator."""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from tests.e2e.airflow_helpers import load_dag, task_states, xcom

pytestmark = pytest.mark.e2e

DAG_ID = "example_devrev_crash_export"
VERSION_KEY = "com.acme.shop@5.2.0"
FIRST_DAY = datetime(2026, 2, 1, tzinfo=timezone.utc)
LIST = "/observability.sessions.list"


@pytest.fixture
def sim(devrev_simulator, airflow_db, monkeypatch, tmp_path):
    # Read by the DAG file when it is parsed, which load_dag() does after this.
    monkeypatch.setenv("DEVREV_EXPORT_BASE", (tmp_path / "exports").as_uri())
    return devrev_simulator


def add(sim, session_id, moment, *, platform="android", crash=True):
    session = sim.make_session("mobile", platform=platform, session_id=session_id, created_at=moment, is_crash=crash)
    return sim.add_session(session, version_key=VERSION_KEY)


def run_day(dag, day: datetime):
    """A run at midnight after ``day``: its data interval is ``day``, as the scheduler would make it."""
    after = day + timedelta(days=1)
    try:
        return dag.test(logical_date=after)
    except TypeError:  # Airflow 2.11
        return dag.test(execution_date=after)


def exported(tmp_path: Path, day: datetime, platform: str) -> list[str]:
    path = tmp_path / "exports" / f"{day:%Y-%m-%d}" / f"{platform}-crash-sessions.jsonl"
    return [json.loads(line)["session_id"] for line in path.read_text(encoding="utf-8").splitlines()]


def test_a_backfill_of_three_days_exports_each_crash_session_exactly_once(sim, tmp_path):
    days = [FIRST_DAY + timedelta(days=n) for n in range(3)]
    expected: dict[str, set[str]] = {"android": set(), "ios": set()}
    # Sessions at every midnight (each belongs to the day it starts), one microsecond-ish before the last
    # midnight, spread through the days, and non-crash ones that must never be exported.
    moments = [FIRST_DAY + timedelta(days=n) for n in range(4)] + [FIRST_DAY + timedelta(days=3, milliseconds=-1)]
    moments += [FIRST_DAY + timedelta(hours=5 * n, minutes=7) for n in range(14)]
    for number, moment in enumerate(moments):
        platform = ("android", "ios")[number % 2]
        session = add(sim, f"crash-{number:02d}", moment, platform=platform)
        if moment < FIRST_DAY + timedelta(days=3):
            expected[platform].add(session["session_id"])
        add(sim, f"fine-{number:02d}", moment, platform=platform, crash=False)

    dag = load_dag(DAG_ID)
    runs = [run_day(dag, day) for day in days]

    for run, day in zip(runs, days, strict=True):
        assert str(run.state) == "success", task_states(run)
        assert run.data_interval_start == day
        assert run.data_interval_end == day + timedelta(days=1)
    for platform in ("android", "ios"):
        per_day = [exported(tmp_path, day, platform) for day in days]
        everything = Counter(session_id for ids in per_day for session_id in ids)
        assert set(everything) == expected[platform]
        assert max(everything.values()) == 1, "a session exported twice"
    # The midnight sessions landed in the day they start: 2026-02-02 00:00 is the first of day 2.
    assert "crash-01" in exported(tmp_path, days[1], "ios")
    assert "crash-03" not in exported(tmp_path, days[2], "ios"), "2026-02-04 00:00 belongs to the next day"


def test_a_rerun_rewrites_the_same_file(sim, tmp_path):
    add(sim, "crash-a", FIRST_DAY + timedelta(hours=3))
    dag = load_dag(DAG_ID)

    first = run_day(dag, FIRST_DAY)
    add(sim, "crash-b", FIRST_DAY + timedelta(hours=4))
    second = run_day(dag, FIRST_DAY)

    assert str(first.state) == str(second.state) == "success"
    assert exported(tmp_path, FIRST_DAY, "android") == ["crash-a", "crash-b"]
    summary = xcom(second, "summarize")
    assert summary["total"] == 2
    assert xcom(second, "export_android_crashes") == {
        "path": (tmp_path / "exports" / "2026-02-01" / "android-crash-sessions.jsonl").as_uri(),
        "count": 2,
    }


def test_the_export_pages_with_the_interval_and_filter_in_every_request(sim, tmp_path):
    sim_page_size = 3
    for number in range(10):
        add(sim, f"crash-{number}", FIRST_DAY + timedelta(hours=number))
    dag = load_dag(DAG_ID)
    for task in dag.tasks:
        if task.task_id.startswith("export_"):
            task.page_size = sim_page_size

    run = run_day(dag, FIRST_DAY)

    assert str(run.state) == "success", task_states(run)
    android = [r for r in sim.requests_for(path=LIST) if r.body and r.body.get("platform") == "android"]
    assert len(android) == 4  # 10 sessions, 3 per page
    for request in android:
        assert request.method == "POST"
        assert request.body["is_crash"] is True
        assert request.body["created_at"]["after"] == "2026-02-01T00:00:00.000000Z"
        assert request.body["created_at"]["before"] == "2026-02-02T00:00:00.000000Z"
    assert [r.body.get("cursor") is None for r in android] == [True, False, False, False]
