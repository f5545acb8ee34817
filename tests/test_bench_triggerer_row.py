"""The real-triggerer benchmark row's pure parts: its arithmetic, its table, its DAG and its reading of the DB."""

from __future__ import annotations

import ast
import json
import math
import sqlite3
from pathlib import Path

import pytest

from bench.server import appear_after
from bench.triggerer_row import RowSettings, cpu_delta, fired, kept_up, per_poll, per_trigger, row, section, table
from bench.triggerer_rows import APPEAR_SPREAD_MS, TASK_ID, dag_source, session_ids


def figures(contender: str = "devrev", **changes: object) -> dict[str, object]:
    """One contender's measured figures, as :func:`bench.triggerer_row.measure` returns them."""
    base: dict[str, object] = {
        "contender": contender,
        "triggers": 1000,
        "poll_interval": 5.0,
        "window": 30.0,
        "polls": 6000,
        "non_404": 0,
        "accepts": 0,
        "cpu": 3.0,
        "runner_cpu": 2.4,
        "cpu_per_poll": per_poll(3.0, 6000),
        "runner_cpu_per_poll": per_poll(2.4, 6000),
        "rss": {"idle": 300 << 20, "warm": 310 << 20, "all": 330 << 20},
        "rss_per_trigger": per_trigger(330 << 20, 310 << 20, 999),
        "runner_rss_per_trigger": per_trigger(170 << 20, 160 << 20, 999),
        "start_seconds": 21.4,
        "fired": 1000,
        "load_average": (1.5, 1.2, 1.0),
    }
    base.update(changes)
    return base


def test_cpu_per_poll_and_rss_per_trigger() -> None:
    assert per_poll(3.0, 6000) == pytest.approx(0.0005)
    assert math.isnan(per_poll(3.0, 0))
    assert per_trigger(330 << 20, 310 << 20, 999) == pytest.approx((20 << 20) / 999)
    assert math.isnan(per_trigger(1, 0, 0))


def test_cpu_delta_counts_survivors_difference_and_newcomers_whole() -> None:
    # pid 1 spent 2 s in the window; pid 3 started in it (all 0.5 s count); pid 2 exited (lost).
    assert cpu_delta({1: 10.0, 2: 4.0}, {1: 12.0, 3: 0.5}) == pytest.approx(2.5)


def test_row_shows_micro_seconds_kilobytes_and_events() -> None:
    cells = row(figures())
    assert cells[:3] == ["DevRevSessionTrigger", "1,000", "5 s"]
    assert cells[3] == "500 µs"  # 3 s of CPU / 6,000 polls
    assert cells[4] == "400 µs"
    assert cells[5] == "20.5 KB"  # 20 MB / 999
    assert cells[7] == "300 / 310 / 330 MB"
    assert cells[8] == "200"  # polls per second: 6,000 in 30 s
    assert cells[9] == "10 %"  # 3 s of CPU in 30 s
    assert cells[-1] == "1,000 / 1,000"


def test_table_and_section_name_both_contenders_and_flag_unexpected_answers() -> None:
    results = [figures(), figures("http", non_404=3, fired=998)]
    text = table(results)
    assert "| DevRevSessionTrigger |" in text
    assert "| HttpSensorTrigger |" in text
    assert "998 / 1,000" in text
    built = section(results, RowSettings())
    assert built.title == "Real triggerer"
    assert "HttpSensorTrigger: 3 polls in the window were not 404" in built.notes
    assert "1.50 / 1.20 / 1.00" in built.notes
    assert "made" not in built.notes  # both made their 6,000 polls (1,000 every 5 s, 30 s)


def test_section_says_which_contender_fell_behind() -> None:
    assert kept_up(figures(polls=4278)) == pytest.approx(0.713)
    built = section([figures(), figures("http", polls=4278)], RowSettings())
    assert "HttpSensorTrigger made 71% of them" in built.notes
    assert "DevRevSessionTrigger made" not in built.notes


def test_session_ids_are_distinct_and_appear_within_the_spread() -> None:
    ids = session_ids(1000)
    assert len(set(ids)) == 1000
    appear = [appear_after(sid) for sid in ids]
    assert all(a is not None and 0 <= a < APPEAR_SPREAD_MS / 1000 for a in appear)
    assert len(set(appear)) > 900  # spread out, not all at once


@pytest.mark.parametrize(
    ("contender", "sensor", "mapped"),
    [("devrev", "DevRevSessionSensor", "session_id"), ("http", "HttpSensor", "request_params")],
)
def test_dag_source_maps_one_deferrable_sensor_over_the_sessions(contender: str, sensor: str, mapped: str) -> None:
    source = dag_source("row_dag", contender, 3, 5.0)
    tree = ast.parse(source)  # valid Python
    assert json.dumps(session_ids(3)) in source
    assert f"{sensor}.partial(" in source
    expands = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "expand"
    ]
    assert [[keyword.arg for keyword in call.keywords] for call in expands] == [[mapped]]
    assert "deferrable=True" in source
    assert "poke_interval=5.0" in source
    assert any(isinstance(node, ast.Constant) and node.value == TASK_ID for node in ast.walk(tree))


def test_dag_source_refuses_an_unknown_contender() -> None:
    with pytest.raises(ValueError, match="'minimal'"):
        dag_source("row_dag", "minimal", 3, 5.0)


def test_fired_counts_deferred_and_found_events(tmp_path: Path) -> None:
    con = sqlite3.connect(tmp_path / "airflow.db")
    con.execute("CREATE TABLE task_instance (dag_id TEXT, task_id TEXT, state TEXT, next_kwargs TEXT)")
    rows = [
        ("d", TASK_ID, "deferred", "{}"),
        ("d", TASK_ID, "scheduled", json.dumps({"event": {"status": "success", "session": {}}})),
        ("d", TASK_ID, "scheduled", json.dumps({"event": {"status": "error", "message": "x"}})),
        ("d", TASK_ID, "failed", json.dumps({"event": {"status": "success"}})),
        ("other", TASK_ID, "deferred", "{}"),
    ]
    con.executemany("INSERT INTO task_instance VALUES (?, ?, ?, ?)", rows)
    con.commit()
    con.close()
    assert fired(tmp_path, "d", "devrev") == (1, 1)
    assert fired(tmp_path, "d", "http") == (1, 0)
