"""End to end: the daily crash export example, run by real Airflow (dag.test) against the simulator."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.e2e.airflow_helpers import load_dag, task_states, xcom

pytestmark = pytest.mark.e2e

DAG_ID = "example_devrev_crash_export"
VERSION_KEY = "com.acme.shop@5.2.0"
FIRST_DAY = datetime(2026, 2, 1, tzinfo=UTC)
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
    # 10 sessions, 3 per page, each page after the first starting at the instant the one before ended on
    # (whose session it repeats): 5 pages, each the first page of a range inside the interval, no cursor.
    assert len(android) == 5
    for request in android:
        assert request.method == "POST"
        assert request.body["is_crash"] is True
        assert request.body["created_at"]["before"] == "2026-02-01T23:59:59.999999999Z"
        assert "cursor" not in request.body
    starts = [r.body["created_at"]["after"] for r in android]
    assert starts == [f"2026-02-01T{hour:02d}:00:00.000000Z" for hour in (0, 2, 4, 6, 8)]


def test_a_crash_whose_title_was_cut_mid_emoji_is_exported(sim, tmp_path):
    """Issue 28: a lone surrogate (DevRev sends the escape ``\\ud83d``) failed the write on every retry."""
    cut = "Checkout \U0001f6d2 crashed \ud83d"
    session = sim.make_session(
        "mobile", session_id="crash-cut", created_at=FIRST_DAY + timedelta(hours=3), is_crash=True
    )
    session["device_metadata"]["model"] = cut
    sim.add_session(session, version_key=VERSION_KEY)
    add(sim, "crash-whole", FIRST_DAY + timedelta(hours=4))
    dag = load_dag(DAG_ID)
    for task in dag.tasks:
        task.retries = 0  # it failed the same way on every try: one is enough to see it

    run = run_day(dag, FIRST_DAY)

    assert str(run.state) == "success", task_states(run)
    path = tmp_path / "exports" / f"{FIRST_DAY:%Y-%m-%d}" / "android-crash-sessions.jsonl"
    written = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert [s["session_id"] for s in written] == ["crash-cut", "crash-whole"]
    assert written[0]["device_metadata"]["model"] == cut
    assert xcom(run, "summarize")["total"] == 2


# -- settle: late uploads ----------------------------------------------------------------------------------


class SimulatedClock:
    """The one clock of a settle test: the simulator's (when sessions become visible, when requests arrive)
    and the operator's (whether the interval may be listed yet). It moves only when Airflow's date-time
    trigger runs, to the moment that trigger waits for: the deferral, not wall-clock time, lets time pass."""

    def __init__(self, start: datetime) -> None:
        self.now = start.timestamp()

    def time(self) -> float:
        return self.now

    def datetime(self) -> datetime:
        return datetime.fromtimestamp(self.now, tz=UTC)


@pytest.fixture
def timed(airflow_db, monkeypatch, tmp_path):
    """A simulator on a :class:`SimulatedClock` at 00:05 after FIRST_DAY, and the moments the export deferred to.

    Airflow's real DateTimeTrigger runs (inline, under dag.test()); the spy only records its moment and moves
    the simulated clock there before it runs, so it fires at once instead of after wall-clock hours.
    """
    from airflow_provider_devrev._compat import date_time_trigger
    from airflow_provider_devrev.operators.devrev import ListSessionsOperator
    from airflow_provider_devrev.testing import DevRevSimulator

    clock = SimulatedClock(FIRST_DAY + timedelta(days=1, minutes=5))
    trigger_class = type(date_time_trigger(FIRST_DAY))
    real_run = trigger_class.run
    moments: list[datetime] = []

    async def run(self):
        moments.append(self.moment)
        clock.now = max(clock.now, self.moment.timestamp())
        async for event in real_run(self):
            yield event

    monkeypatch.setattr(trigger_class, "run", run)
    monkeypatch.setattr(ListSessionsOperator, "clock", staticmethod(clock.datetime))
    monkeypatch.setenv("DEVREV_EXPORT_BASE", (tmp_path / "exports").as_uri())
    simulator = DevRevSimulator(clock=clock.time, seed_data=False).start()
    monkeypatch.setenv("AIRFLOW_CONN_DEVREV_DEFAULT", simulator.connection_json())
    try:
        yield simulator, clock, moments
    finally:
        simulator.stop()


def add_late(sim, session_id, created, uploaded, *, platform="android"):
    session = sim.make_session("mobile", platform=platform, session_id=session_id, created_at=created, is_crash=True)
    return sim.add_session(session, version_key=VERSION_KEY, appear_at=uploaded.timestamp())


def export_tasks(dag):
    return [task for task in dag.tasks if task.task_id.startswith("export_")]


def test_a_crash_uploaded_after_midnight_is_in_its_days_file(timed, tmp_path):
    sim, _, moments = timed
    next_day = FIRST_DAY + timedelta(days=1)
    add_late(sim, "crash-2350", next_day - timedelta(minutes=10), next_day + timedelta(minutes=30))
    add_late(sim, "crash-midnight", next_day, next_day)
    dag = load_dag(DAG_ID)
    assert {task.settle for task in export_tasks(dag)} == {timedelta(hours=2)}
    assert {task.deferrable for task in export_tasks(dag)} == {True}

    first = run_day(dag, FIRST_DAY)

    assert str(first.state) == "success", task_states(first)
    # The first export deferred until created_before + settle (the simulated clock moved there); the second
    # found that moment passed. Neither listed before it.
    ready = next_day + timedelta(hours=2)
    assert moments == [ready]
    listed_at = {request.time for request in sim.requests_for(path=LIST)}
    assert listed_at
    assert min(listed_at) >= ready.timestamp()
    assert exported(tmp_path, FIRST_DAY, "android") == ["crash-2350"]

    # The next day: the midnight session is in that file, and in no other.
    second = run_day(dag, next_day)
    assert str(second.state) == "success", task_states(second)
    assert moments[1:] == [ready + timedelta(days=1)]
    assert exported(tmp_path, next_day, "android") == ["crash-midnight"]


def test_without_settle_the_late_crash_is_in_no_file(timed, tmp_path):
    """The control: the test above could fail. Listing at 00:05 cannot see a crash uploaded at 00:30."""
    sim, _, moments = timed
    next_day = FIRST_DAY + timedelta(days=1)
    add_late(sim, "crash-2350", next_day - timedelta(minutes=10), next_day + timedelta(minutes=30))
    dag = load_dag(DAG_ID)
    for task in export_tasks(dag):
        task.settle = timedelta(0)

    run = run_day(dag, FIRST_DAY)

    assert str(run.state) == "success", task_states(run)
    assert moments == []
    assert exported(tmp_path, FIRST_DAY, "android") == []


def test_a_three_day_backfill_with_late_uploads_puts_every_session_in_exactly_one_file(timed, tmp_path):
    sim, clock, moments = timed
    clock.now = (FIRST_DAY + timedelta(days=3, minutes=5)).timestamp()  # the backfill starts after day 3
    days = [FIRST_DAY + timedelta(days=n) for n in range(3)]
    expected: dict[str, set[str]] = {"android": set(), "ios": set()}
    for number, day in enumerate([*days, FIRST_DAY + timedelta(days=3)]):
        for platform in ("android", "ios"):
            # Created just before and exactly at each midnight, uploaded up to 90 minutes later.
            late = add_late(
                sim,
                f"late-{platform}-{number}",
                day - timedelta(minutes=10),
                day + timedelta(minutes=90),
                platform=platform,
            )
            midnight = add_late(
                sim, f"midnight-{platform}-{number}", day, day + timedelta(minutes=45), platform=platform
            )
            noon = add_late(
                sim,
                f"noon-{platform}-{number}",
                day + timedelta(hours=12),
                day + timedelta(hours=12),
                platform=platform,
            )
            for session in (late, midnight, noon):
                if (
                    FIRST_DAY
                    <= datetime.fromisoformat(session["created_at"].replace("Z", "+00:00"))
                    < days[-1] + timedelta(days=1)
                ):
                    expected[platform].add(session["session_id"])
    dag = load_dag(DAG_ID)

    runs = [run_day(dag, day) for day in days]

    assert [str(run.state) for run in runs] == ["success"] * 3, [task_states(run) for run in runs]
    for platform in ("android", "ios"):
        counts = Counter(session_id for day in days for session_id in exported(tmp_path, day, platform))
        assert set(counts) == expected[platform]
        assert max(counts.values()) == 1, "a session exported twice"
    # Days 1 and 2 were ready before the backfill began; day 3 (ready at 02:00 after it) deferred.
    assert moments == [days[-1] + timedelta(days=1, hours=2)]
