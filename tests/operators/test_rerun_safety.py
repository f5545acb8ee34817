"""Reruns that would shrink an export, and late sweeps, against the simulator (the DAG runs are in tests/e2e)."""

from __future__ import annotations

import json
import tracemalloc
from datetime import UTC, datetime, timedelta

import pendulum
import pytest

from airflow_provider_devrev._compat import AirflowFailException
from airflow_provider_devrev._export_files import CHUNK, count_sessions
from airflow_provider_devrev._storage import storage_path
from airflow_provider_devrev.operators.devrev import ListSessionsOperator
from airflow_provider_devrev.operators.sweep import SweepLateSessionsOperator
from tests.objectstore import attach_memory_filesystem

VERSION = "com.example.app@1.0.0"
DAY = datetime(2026, 3, 1, tzinfo=UTC)
CONTEXT = {"data_interval_start": pendulum.instance(DAY), "data_interval_end": pendulum.instance(DAY + timedelta(1))}

pytestmark = pytest.mark.devrev_simulator(seed_data=False, page_size=3)


def add(sim, session_id, moment=DAY + timedelta(hours=1)):
    session = sim.make_session("mobile", platform="android", session_id=session_id, created_at=moment, is_crash=True)
    return sim.add_session(session, version_key=VERSION)


@pytest.fixture(params=["local path", "memory://"])
def target(request, tmp_path):
    """Where the export goes: a local file, or an object store (fsspec's in-memory one, as Airflow attaches it)."""
    if request.param == "local path":
        return (tmp_path / "exports" / "day.jsonl").as_uri()
    attach_memory_filesystem()
    return f"memory://devrev-rerun-{tmp_path.name}/exports/day.jsonl"


def read(path) -> bytes:
    with storage_path(path).open("rb") as stream:
        return stream.read()


def ids(path) -> list[str]:
    return [json.loads(line)["session_id"] for line in read(path).decode().splitlines()]


def names(target) -> list[str]:
    return sorted(path.name for path in storage_path(target).parent.iterdir())


def export(target, **kwargs):
    return ListSessionsOperator(
        task_id="export", platform="android", version_key=VERSION, output_path=target, settle=timedelta(0), **kwargs
    )


def sweep(target):
    return SweepLateSessionsOperator(
        task_id="sweep", platform="android", version_key=VERSION, output_path=target, settle=timedelta(0)
    )


def test_a_rerun_with_fewer_sessions_fails_with_both_counts_and_keeps_the_file(devrev_simulator, target):
    sim = devrev_simulator
    for number in range(5):
        add(sim, f"s{number}", DAY + timedelta(minutes=number))
    assert export(target).execute(CONTEXT)["count"] == 5
    before = read(target)
    for number in range(5):
        sim.remove_session(f"s{number}")  # DevRev's retention, or an erasure request

    with pytest.raises(AirflowFailException) as failed:
        export(target).execute(CONTEXT)

    message = str(failed.value)
    assert "found 0 sessions" in message
    assert "holds 5" in message
    assert "allow_shrink=True" in message
    assert read(target) == before
    assert names(target) == ["day.jsonl"], "the refused file was left behind"

    assert export(target, allow_shrink=True).execute(CONTEXT) == {"path": str(storage_path(target)), "count": 0}
    assert read(target) == b""


def test_a_rerun_with_one_session_fewer_fails_too_and_as_many_or_more_replaces(devrev_simulator, target):
    sim = devrev_simulator
    for number in range(4):
        add(sim, f"s{number}", DAY + timedelta(minutes=number))
    export(target).execute(CONTEXT)
    sim.remove_session("s2")

    with pytest.raises(AirflowFailException, match=r"found 3 sessions where .* holds 4"):
        export(target).execute(CONTEXT)
    assert ids(target) == ["s0", "s1", "s2", "s3"]

    add(sim, "s4", DAY + timedelta(minutes=4))  # 4 again, one of them new: not a shrink
    assert export(target).execute(CONTEXT)["count"] == 4
    assert ids(target) == ["s0", "s1", "s3", "s4"]


@pytest.mark.parametrize(
    ("content", "expected"),
    [(b"", 0), (b"{}\n", 1), (b"{}\n{}", 2), (b"{}\n" * 5, 5), (b"x" * (CHUNK - 1) + b"\n{}\n", 2)],
)
def test_count_sessions_counts_lines_however_the_chunks_fall(tmp_path, content, expected):
    path = tmp_path / "f.jsonl"
    path.write_bytes(content)
    assert count_sessions(storage_path(str(path))) == expected
    assert count_sessions(storage_path(str(tmp_path / "missing.jsonl"))) is None


def test_counting_a_file_with_one_huge_session_costs_one_chunk(tmp_path):
    path = tmp_path / "big.jsonl"
    line = json.dumps({"session_id": "big", "blob": "x" * (40 << 20)}) + "\n"
    path.write_text(line + '{"session_id":"small"}\n', encoding="utf-8")
    del line
    # The first file opened in a process imports and sets up Airflow's storage layer (lineage tracking among
    # it): a one-off cost, not the count's. Paid here, before measuring.
    warm_up = tmp_path / "warm-up.jsonl"
    warm_up.write_text("{}\n")
    assert count_sessions(storage_path(str(warm_up))) == 1

    tracemalloc.start()
    try:
        count = count_sessions(storage_path(str(path)))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert count == 2
    assert peak < 3 * CHUNK, f"{peak:,} bytes to count a 40 MB file"


# -- the late sweep -----------------------------------------------------------------------------------------


def test_a_sweep_writes_only_what_the_export_missed_and_a_second_sweep_only_what_came_since(devrev_simulator, target):
    sim = devrev_simulator
    for number in range(7):
        add(sim, f"on-time-{number}", DAY + timedelta(hours=number))
    export(target).execute(CONTEXT)
    late = [add(sim, f"late-{number}", DAY + timedelta(hours=20, minutes=number))["session_id"] for number in (1, 2)]
    add(sim, "next-day", DAY + timedelta(days=1))  # another interval's: never swept into this one

    first = sweep(target).execute(CONTEXT)

    late_1 = target.replace("day.jsonl", "day.late-1.jsonl")
    assert first == {"path": str(storage_path(late_1)), "count": 2}
    assert ids(late_1) == late
    assert sweep(target).execute(CONTEXT) == {"path": None, "count": 0}
    assert names(target) == ["day.jsonl", "day.late-1.jsonl"]

    add(sim, "later-still", DAY + timedelta(minutes=1))
    third = sweep(target).execute(CONTEXT)

    late_2 = target.replace("day.jsonl", "day.late-2.jsonl")
    assert third == {"path": str(storage_path(late_2)), "count": 1}
    assert ids(late_2) == ["later-still"]
    assert ids(target) == [f"on-time-{number}" for number in range(7)]
    assert names(target) == ["day.jsonl", "day.late-1.jsonl", "day.late-2.jsonl"]


def test_a_rerun_of_the_export_after_a_sweep_leaves_the_swept_sessions_in_their_own_file(devrev_simulator, target):
    sim = devrev_simulator
    for number in range(3):
        add(sim, f"on-time-{number}", DAY + timedelta(hours=number))
    export(target).execute(CONTEXT)
    add(sim, "late", DAY + timedelta(hours=23))
    sweep(target).execute(CONTEXT)

    assert export(target).execute(CONTEXT)["count"] == 3

    files = [target, target.replace("day.jsonl", "day.late-1.jsonl")]
    everywhere = [session_id for path in files for session_id in ids(path)]
    assert sorted(everywhere) == ["late", "on-time-0", "on-time-1", "on-time-2"]


def test_a_sweep_without_its_export_fails_and_writes_nothing(devrev_simulator, target):
    add(devrev_simulator, "s0")

    with pytest.raises(AirflowFailException, match=r"nothing to sweep: .*day\.jsonl does not exist"):
        sweep(target).execute(CONTEXT)

    parent = storage_path(target).parent
    assert not parent.exists() or list(parent.iterdir()) == []


def test_a_session_removed_from_devrev_stays_in_the_export_and_the_sweep_adds_nothing(devrev_simulator, target):
    sim = devrev_simulator
    add(sim, "kept")
    add(sim, "erased", DAY + timedelta(hours=2))
    export(target).execute(CONTEXT)
    sim.remove_session("erased")

    assert sweep(target).execute(CONTEXT) == {"path": None, "count": 0}
    assert ids(target) == ["kept", "erased"]


def test_the_sweep_needs_an_output_path():
    with pytest.raises(Exception, match="output_path"):
        SweepLateSessionsOperator(task_id="sweep", platform="android", version_key=VERSION, output_path=None)
