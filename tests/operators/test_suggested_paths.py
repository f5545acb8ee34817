"""
Every ``output_path`` the code and docs suggest gives two runs two files.

A manual run dated 2025-06-02 under ``CronDataIntervalTimetable`` exports 2025-06-01 → 06-02; the next scheduled
run exports 06-02 → 06-03 with the same ``ds``. Each suggested template is rendered for both by Airflow itself
(its timetable computes the runs, its template environment and macros render them) and must name two paths.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pendulum
import pytest

from airflow_provider_devrev._compat import AirflowFailException
from airflow_provider_devrev.operators.devrev import ListSessionsOperator
from airflow_provider_devrev.operators.sweep import SweepLateSessionsOperator

REPO = Path(__file__).resolve().parents[2]
VERSION = "com.example.app@1.0.0"
#: A URL holding a Jinja template, up to the quote or backtick that ends it.
SUGGESTION = re.compile(r"[a-z0-9]+://[^\s'\"`]*\{\{[^'\"`]*")
DS = re.compile(r"\{\{\s*ds\s*\}\}")


def suggestions(text: str) -> list[str]:
    return SUGGESTION.findall(text)


def two_runs() -> list[dict]:
    """The manual run dated 2025-06-02 and the next scheduled run, as Airflow's own timetable makes them."""
    # The scheduler's timetable (airflow.sdk's is the DAG author's declaration, without the scheduling logic).
    from airflow.timetables.base import TimeRestriction
    from airflow.timetables.interval import CronDataIntervalTimetable

    try:
        from airflow.sdk.execution_time import macros
    except ImportError:  # Airflow 2.11
        from airflow import macros  # type: ignore[no-redef]

    timetable = CronDataIntervalTimetable("0 0 * * *", timezone="UTC")
    logical = pendulum.datetime(2025, 6, 2, tz="UTC")
    manual = timetable.infer_manual_data_interval(run_after=logical)
    restriction = TimeRestriction(earliest=pendulum.datetime(2025, 5, 1, tz="UTC"), latest=None, catchup=True)
    scheduled = timetable.next_dagrun_info(last_automated_data_interval=manual, restriction=restriction)
    assert scheduled is not None
    runs = []
    for date, interval in ((logical, manual), (scheduled.logical_date, scheduled.data_interval)):
        runs.append(
            {
                "ds": date.strftime("%Y-%m-%d"),
                "ds_nodash": date.strftime("%Y%m%d"),
                "logical_date": date,
                "data_interval_start": interval.start,
                "data_interval_end": interval.end,
                "macros": macros,
            }
        )
    # The premise: the same ds, two intervals a day apart.
    assert runs[0]["ds"] == runs[1]["ds"] == "2025-06-02"
    assert (runs[0]["data_interval_start"], runs[1]["data_interval_start"]) == (
        datetime(2025, 6, 1, tzinfo=UTC),
        datetime(2025, 6, 2, tzinfo=UTC),
    )
    return runs


def render_for_both(template: str) -> list[str]:
    try:
        from airflow.sdk import DAG
    except ImportError:  # Airflow 2.11
        from airflow import DAG  # type: ignore[no-redef]

    with DAG(dag_id="paths", schedule=None, start_date=datetime(2025, 1, 1, tzinfo=UTC)) as dag:
        op = ListSessionsOperator(task_id="export", platform="android", version_key=VERSION, output_path=template)
    return [op.render_template(template, context, dag.get_template_env()) for context in two_runs()]


@pytest.mark.devrev_simulator(seed_data=False)
def test_the_too_many_for_xcom_error_suggests_paths_two_runs_cannot_share(devrev_simulator):
    day = datetime(2026, 3, 1, tzinfo=UTC)
    for number in range(2):
        session = devrev_simulator.make_session("mobile", platform="android", created_at=day + timedelta(hours=number))
        devrev_simulator.add_session(session, version_key=VERSION)
    op = ListSessionsOperator(task_id="list", platform="android", version_key=VERSION, max_xcom_sessions=1)
    context = {
        "data_interval_start": pendulum.instance(day),
        "data_interval_end": pendulum.instance(day) + timedelta(1),
    }

    with pytest.raises(AirflowFailException) as failed:
        op.execute(context)

    suggested = suggestions(str(failed.value))
    assert len(suggested) == 2, str(failed.value)
    for template in suggested:
        manual, scheduled = render_for_both(template)
        assert manual != scheduled, f"{template!r} names one file for two runs: {manual}"


@pytest.mark.parametrize(
    "where",
    ["ListSessionsOperator", "SweepLateSessionsOperator", "docs/exporting.md", "dags/examples"],
)
def test_every_suggested_export_path_names_two_files_for_two_runs(where):
    if where.endswith("Operator"):
        texts = [
            {"ListSessionsOperator": ListSessionsOperator, "SweepLateSessionsOperator": SweepLateSessionsOperator}[
                where
            ].__doc__
        ]
    elif where.endswith(".md"):
        texts = [(REPO / where).read_text(encoding="utf-8")]
    else:  # the examples build their paths from parts: their tasks' output_path, as the DAG file made it
        from tests.e2e.airflow_helpers import dag_bag

        bag = dag_bag(str(REPO / where))
        assert not bag.import_errors, bag.import_errors
        texts = [
            str(task.output_path)
            for dag in bag.dags.values()
            for task in dag.tasks
            if isinstance(task, ListSessionsOperator) and task.output_path
        ]
    suggested = [template for text in texts for template in suggestions(text or "")]
    assert suggested, f"no suggested path found in {where}"
    for template in suggested:
        manual, scheduled = render_for_both(template)
        assert manual != scheduled, f"{where}: {template!r} names one file for two runs: {manual}"


def test_no_suggestion_anywhere_names_a_file_by_ds():
    files = [
        *(REPO / "airflow_provider_devrev").rglob("*.py"),
        *(REPO / "docs").glob("*.md"),
        *(REPO / "dags" / "examples").glob("*.py"),
        REPO / "README.md",
    ]
    found = [
        (str(path.relative_to(REPO)), template)
        for path in files
        for template in suggestions(path.read_text(encoding="utf-8"))
        if DS.search(template)
    ]
    assert found == []
